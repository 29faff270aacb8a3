"""The one percentile every reported latency uses.

Linear interpolation between the closest ranks: the value at rank (n - 1) * q / 100 of the sorted
sample, interpolated between its neighbours (numpy.percentile's default, Hyndman and Fan's type 7).
It never reports a p95 below the p50, and with one value every percentile is that value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of `values`; ValueError when there are none."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values to take a percentile of")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must lie in [0, 100], got {q}")
    rank = (len(ordered) - 1) * q / 100
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)
