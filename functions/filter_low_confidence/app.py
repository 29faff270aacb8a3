"""filter-low-confidence: pass confident inferences on, fail the others by name, and choose the audits.

The state machine catches LowConfidenceError by its type name and records the item for human
review, so this function only decides. THRESHOLD is validated when the module loads: a bad value
fails every invocation with InvalidThresholdError instead of silently passing or failing everything.

A confident decision is also an audit when the image's content hash (`body.content_sha256`, from
serialize-image) falls in the AUDIT_RATE share (modelquality.audit, the ModelQualityLayer): the output
gains `"audit": {"sampled": <bool>, "rate": AUDIT_RATE}` beside the unchanged `statusCode` and `body`, and the
state machine records sampled ones under audit/ for a blind label only after VehicleClassified has gone
out. Choosing here costs no I/O and is a pure function of the image, so a retried invocation or a second
execution of the same image decides the same; a bad AUDIT_RATE fails every invocation by name
(InvalidAuditRateError), as a bad THRESHOLD does (the template's MinValue/MaxValue keep it in [0, 1]).
"""

from __future__ import annotations

import math
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from modelquality.audit import is_audited, parse_audit_rate
from modelquality.errors import InvalidAuditRateError

logger = Logger()
metrics = Metrics()


class InvalidThresholdError(Exception):
    """THRESHOLD is not a number in (0, 1]."""


class InvalidEventError(Exception):
    """The event carries no `body.inferences` list of probabilities."""


class LowConfidenceError(Exception):
    """The top probability is below THRESHOLD: the item goes to human review."""


def parse_threshold(raw: str | None) -> float:
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        value = math.nan
    if not (0.0 < value <= 1.0):
        raise InvalidThresholdError(f"THRESHOLD must be a number in (0, 1], got {raw!r}")
    return value


THRESHOLD = parse_threshold(os.environ.get("THRESHOLD"))  # template.yaml sets it from ConfidenceThreshold
AUDIT_RATE = parse_audit_rate(os.environ.get("AUDIT_RATE"), "AUDIT_RATE")  # ... and this from AuditRate

__all__ = ["InvalidAuditRateError", "InvalidEventError", "InvalidThresholdError", "LowConfidenceError",
           "lambda_handler"]


def top_confidence(body: dict[str, Any]) -> float:
    inferences = body.get("inferences")
    if not isinstance(inferences, list) or not inferences:
        raise InvalidEventError(f"body.inferences must be a non-empty list, got {inferences!r}")
    return float(max(inferences))


def check_confidence(key: str, confidence: float, threshold: float) -> None:
    if confidence < threshold:
        raise LowConfidenceError(f"{key}: top confidence {confidence:.4f} is below the threshold {threshold}")


def image_identity(body: dict[str, Any]) -> str:
    """The image's content hash; for an event without one (an older serialize-image), its S3 URI."""
    digest = body.get("content_sha256")
    if isinstance(digest, str) and digest:
        return digest
    return f"s3://{body.get('s3_bucket', '')}/{body.get('s3_key', '')}"


def audit_choice(body: dict[str, Any], rate: float) -> dict[str, Any]:
    """Whether this confident decision is audited, and at what rate (the record says which share it stands for)."""
    return {"sampled": is_audited(image_identity(body), rate), "rate": rate}


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = event.get("body") if isinstance(event, dict) else None
    if not isinstance(body, dict):
        raise InvalidEventError("expected the classify-image output: an object with a `body` object")
    confidence = top_confidence(body)
    key = str(body.get("s3_key", "<unknown key>"))
    metrics.add_metric(name="Confidence", unit=MetricUnit.Percent, value=round(confidence * 100, 2))
    passed = confidence >= THRESHOLD
    metrics.add_metric(name="LowConfidence", unit=MetricUnit.Count, value=0 if passed else 1)
    logger.info("confidence checked", extra={"s3_key": key, "confidence": confidence, "threshold": THRESHOLD})
    check_confidence(key, confidence, THRESHOLD)
    audit = audit_choice(body, AUDIT_RATE)
    metrics.add_metric(name="Audited", unit=MetricUnit.Count, value=int(audit["sampled"]))
    return {**event, "audit": audit}
