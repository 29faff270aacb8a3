"""The drift check on a capture: the drift core's computation (driftcheck.checks), the one the CheckDriftFunction
runs on AWS, applied to the most recent inferences of a capture read by monitoring.capture."""

from __future__ import annotations

from driftcheck.baseline import Baseline
from driftcheck.capture import CaptureSet
from driftcheck.checks import FEATURE_LABELS, DriftConfig, DriftResult, FeatureCheck, Window, check_drift
from driftcheck.stats import psi

__all__ = ["FEATURE_LABELS", "TEST_SHORT", "DriftConfig", "DriftResult", "FeatureCheck", "Window", "check_drift",
           "drift_of", "p_text", "psi"]

TEST_SHORT = {"Kolmogorov-Smirnov": "KS", "chi-square": "χ²"}


def drift_of(capture: CaptureSet, baseline: Baseline, config: DriftConfig | None = None,
             last: int | None = None) -> DriftResult:
    """Check the last `last` inferences (all without it); InsufficientDataError when too few for a verdict."""
    return check_drift(baseline, Window.of(capture.select(last=last)), config or DriftConfig.load())


def p_text(p: float) -> str:
    """A p-value for people: below 1e-16 the digits mean nothing (the tests' floating-point floor)."""
    return "< 1e-16" if p < 1e-16 else f"{p:.2g}"
