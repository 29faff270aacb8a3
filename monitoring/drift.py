"""Compare a window of captured traffic with the training baseline: what drifted, by how much."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from monitoring.baseline import decode_images, image_features
from monitoring.capture import CapturedInference

DEFAULT_CONFIG = Path(__file__).with_name("config") / "drift.json"


@dataclass(frozen=True)
class DriftConfig:
    psi_threshold: float = 0.2
    p_value: float = 0.01
    min_samples: int = 50
    bins: int = 10

    @classmethod
    def load(cls, path: Path = DEFAULT_CONFIG) -> DriftConfig:
        values = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
        return cls(**values)


@dataclass(frozen=True)
class FeatureCheck:
    feature: str
    psi: float
    p_value: float
    drifted: bool
    detail: str


def psi(expected: Sequence[float], actual: Sequence[float], bins: int) -> float:
    """Population stability index over the baseline's quantile bins (equal-mass buckets)."""
    expected_array, actual_array = np.asarray(expected, float), np.asarray(actual, float)
    edges = np.unique(np.quantile(expected_array, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    expected_share = np.histogram(expected_array, edges)[0] / len(expected_array)
    actual_share = np.histogram(actual_array, edges)[0] / len(actual_array)
    return categorical_psi(expected_share, actual_share)


def categorical_psi(expected_share: np.ndarray, actual_share: np.ndarray, floor: float = 1e-4) -> float:
    e = np.clip(np.asarray(expected_share, float), floor, None)
    a = np.clip(np.asarray(actual_share, float), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def continuous_check(name: str, expected: Sequence[float], actual: Sequence[float],
                     config: DriftConfig) -> FeatureCheck:
    value = psi(expected, actual, config.bins)
    p = float(stats.ks_2samp(expected, actual).pvalue)
    drifted = value >= config.psi_threshold and p < config.p_value
    detail = f"mean {np.mean(expected):.3f} -> {np.mean(actual):.3f}"
    return FeatureCheck(name, round(value, 4), p, drifted, detail)


def class_mix_check(expected_share: Sequence[float], predicted: Sequence[int], names: Sequence[str],
                    config: DriftConfig) -> FeatureCheck:
    counts = np.bincount(np.asarray(predicted, int), minlength=len(names))
    actual_share = counts / counts.sum()
    value = categorical_psi(np.asarray(expected_share), actual_share)
    expected_counts = np.clip(np.asarray(expected_share, float), 1e-6, None)
    expected_counts = expected_counts / expected_counts.sum() * counts.sum()
    p = float(stats.chisquare(counts, expected_counts).pvalue)
    detail = ", ".join(f"{n} {e:.2f} -> {a:.2f}" for n, e, a in zip(names, expected_share, actual_share, strict=True))
    return FeatureCheck("class_mix", round(value, 4), p, value >= config.psi_threshold and p < config.p_value, detail)


def check_drift(baseline: dict[str, Any], window: Sequence[CapturedInference],
                config: DriftConfig) -> list[FeatureCheck]:
    """One check per feature; an empty list when the window is too small to judge."""
    if len(window) < config.min_samples:
        return []
    features = image_features(decode_images([record.input for record in window]))
    checks = [continuous_check("confidence", baseline["confidence"], [r.confidence for r in window], config)]
    checks += [continuous_check(name, baseline["features"][name], features[name], config)
               for name in ("brightness", "red", "green", "blue")]
    checks.append(class_mix_check(baseline["class_mix"], [r.predicted for r in window], baseline["class_names"],
                                  config))
    return checks
