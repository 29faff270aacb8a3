"""The drift check on a capture: the drift core's computation (driftcheck.checks), the one the CheckDriftFunction
runs on AWS, applied to the most recent inferences of a capture read by monitoring.capture."""

from __future__ import annotations

from driftcheck.baseline import Baseline
from driftcheck.capture import CaptureSet
from driftcheck.checks import FEATURE_LABELS, DriftConfig, DriftResult, FeatureCheck, Window, check_drift
from driftcheck.stats import psi

__all__ = ["FEATURE_LABELS", "DriftConfig", "DriftResult", "FeatureCheck", "Window", "check_drift", "drift_of",
           "psi"]


def drift_of(capture: CaptureSet, baseline: Baseline, config: DriftConfig | None = None,
             last: int | None = None) -> DriftResult:
    """Check the last `last` inferences (all without it); InsufficientDataError when too few for a verdict."""
    return check_drift(baseline, Window.of(capture.select(last=last)), config or DriftConfig.load())
