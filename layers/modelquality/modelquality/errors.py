"""Why quality could not be assessed, by name.

The package sits below `common`, so these do not subclass common.errors: the CLI maps them to exit status 2,
and on AWS each fails the CheckQualityFunction's invocation (CheckQualityErrorsAlarm).
"""

from __future__ import annotations


class QualityError(Exception):
    """Quality cannot be assessed from this input."""


class SourceError(QualityError):
    """The source is not a bucket or a folder that mirrors one."""


class InvalidAuditRateError(QualityError, ValueError):
    """An audit rate that is not a number from 0 to 1."""


class LabelFormatError(QualityError, ValueError):
    """A line that is not a SageMaker Ground Truth image-classification label."""


class RecordFormatError(QualityError, ValueError):
    """A decision record (review/ or audit/) that is not one the workflow writes."""


class WindowTooLargeError(QualityError):
    """The scheduled check ran out of its time before it had listed and read its window: the bucket holds more
    records than one invocation can get through (docs/monitoring.md says how far it scales, and what to do)."""
