"""Why a drift check could not run, by name.

These are the function's error types on AWS (each one fails the invocation, which the
CheckDriftErrorsAlarm reports) and one line with exit status 2 from `python -m monitoring`.
The package sits below `common`, so these do not subclass common.errors: the CLI maps them.
"""

from __future__ import annotations


class DriftCheckError(Exception):
    """The check could not run: nothing to read, unreadable input, or inputs that do not belong together."""


class CaptureNotFoundError(DriftCheckError):
    """The capture location does not exist or holds no capture files."""


class BaselineError(DriftCheckError):
    """The baseline is missing, is not JSON, or lacks a field the check needs."""


class ClassSetMismatchError(DriftCheckError):
    """Baseline, model and capture do not share one class set: comparing them would be meaningless."""


class InsufficientDataError(DriftCheckError):
    """Too few valid inferences in the window for a verdict (fewer than the config's min_samples)."""


class DriftConfigError(DriftCheckError):
    """The drift thresholds file is not what the check needs."""
