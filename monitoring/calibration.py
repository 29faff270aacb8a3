"""Reliability bins: accuracy per top-confidence bin, the data behind a reliability diagram.

Used both by the training-time validation report and by the monitoring report's plot.
"""

from __future__ import annotations

import numpy as np


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, low: float, bins: int = 10) -> list[dict[str, float]]:
    """Equal-width bins from `low` (1 / number of classes) to 1; empty bins are left out."""
    edges = np.linspace(low, 1.0, bins + 1)
    rows = []
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence >= start) & ((confidence < end) | (end == 1.0))
        if inside.any():
            rows.append({"low": round(float(start), 4), "high": round(float(end), 4), "count": int(inside.sum()),
                         "accuracy": round(float(correct[inside].mean()), 4),
                         "mean_confidence": round(float(confidence[inside].mean()), 4)})
    return rows
