"""The workflow's decision records, as the state machine writes them to the data bucket:

    review/<execution>.json   a low-confidence decision, for a person (PrepareReviewRecord)
    audit/<execution>.json    a confident decision chosen for a blind audit (PrepareAuditRecord)

Both hold `s3_bucket`, `s3_key`, `inferences`, `prediction` ({"label", "confidence"}), `content_sha256` (the
image's content hash), `model_version`, `execution_arn` and `recorded_at`; an audit also `"audit": true` and
the `audit_rate` it was drawn at. Records written before content hashes and audits existed lack those fields
and still parse. A person's label is `labels/<content hash>.jsonl` (one Ground Truth line): a label is for an
image, not an execution (older labels are `labels/<execution>.jsonl`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelquality.audit import SHA256_HEX, parse_audit_rate
from modelquality.errors import InvalidAuditRateError, RecordFormatError

REVIEW_PREFIX = "review/"
AUDIT_PREFIX = "audit/"
LABELS_PREFIX = "labels/"
RECORD_SUFFIX = ".json"
LABEL_SUFFIX = ".jsonl"
REVIEW, AUDIT = "review", "audit"
KIND_OF_PREFIX = {REVIEW_PREFIX: REVIEW, AUDIT_PREFIX: AUDIT}
# Execution names (1-80 characters: no spaces, brackets, wildcards, `"#%\\^|~`$&,;:/`) and API request ids; an id
# is also a file name and a URL path segment, so nothing that walks out of its folder (no `/`, no leading dot).
ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-+=@!'()]{0,199}$")


def record_id(key: str, prefix: str = REVIEW_PREFIX) -> str | None:
    """`<prefix><id>.json` to its id; None for any other key (one in a sub-folder included)."""
    if not key.startswith(prefix) or not key.endswith(RECORD_SUFFIX):
        return None
    candidate = key[len(prefix):-len(RECORD_SUFFIX)]
    return candidate if ITEM_ID.match(candidate) else None


def record_key(identifier: str, kind: str = REVIEW) -> str:
    return f"{AUDIT_PREFIX if kind == AUDIT else REVIEW_PREFIX}{identifier}{RECORD_SUFFIX}"


def label_key(name: str) -> str:
    """`labels/<name>.jsonl`: `name` is the image's content hash (or, for an image without one, the item id)."""
    return f"{LABELS_PREFIX}{name}{LABEL_SUFFIX}"


def label_name(key: str) -> str | None:
    """`labels/<name>.jsonl` to its name; None for any other key."""
    if not key.startswith(LABELS_PREFIX) or not key.endswith(LABEL_SUFFIX):
        return None
    candidate = key[len(LABELS_PREFIX):-len(LABEL_SUFFIX)]
    return candidate if ITEM_ID.match(candidate) else None


def parse_time(text: object) -> datetime | None:
    """An ISO 8601 time (Step Functions writes `2024-11-25T23:21:43.123Z`) in UTC; None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Decision:
    """One recorded decision of the model on one image."""

    id: str  # the execution's name (or the API request id)
    kind: str  # review (low confidence: a person was asked) | audit (confident, dispatched, audited blind)
    s3_bucket: str
    s3_key: str
    predicted: str | None  # the model's label
    confidence: float | None
    inferences: tuple[float, ...]
    recorded_at: str
    time: datetime | None
    content_sha256: str | None  # None in records written before content hashes
    audit_rate: float | None = None  # the rate an audit was drawn at (it stands for 1/rate confident decisions)
    model_version: str | None = None

    @property
    def source_ref(self) -> str:
        return f"s3://{self.s3_bucket}/{self.s3_key}"

    @property
    def image(self) -> str:
        """The image's identity: its content hash, else (an old record) its S3 URI."""
        return self.content_sha256 or self.source_ref

    @property
    def audit(self) -> bool:
        return self.kind == AUDIT


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_decision(identifier: str, body: bytes | str, kind: str = REVIEW) -> Decision:
    """A record's bytes as a Decision; RecordFormatError names what is wrong."""
    try:
        record = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RecordFormatError(f"not JSON ({error})") from error
    if not isinstance(record, dict):
        raise RecordFormatError(f"not a JSON object but {type(record).__name__}")
    bucket, key = record.get("s3_bucket"), record.get("s3_key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise RecordFormatError("s3_bucket and s3_key must be non-empty strings")
    digest = record.get("content_sha256")
    if digest is not None and (not isinstance(digest, str) or not SHA256_HEX.match(digest)):
        raise RecordFormatError(f"content_sha256 is not a SHA-256 in hex: {digest!r}")
    found = record.get("prediction")
    prediction: dict[str, Any] = found if isinstance(found, dict) else {}
    label = prediction.get("label")
    listed = record.get("inferences")
    inferences: list[Any] = listed if isinstance(listed, list) else []
    rate = None
    if kind == AUDIT:
        if not isinstance(label, str) or not label:
            raise RecordFormatError("an audit record needs the model's prediction.label")
        try:
            rate = parse_audit_rate(record.get("audit_rate"), "audit_rate")
        except InvalidAuditRateError as error:
            raise RecordFormatError(str(error)) from error
        if rate == 0:
            raise RecordFormatError("audit_rate is 0: nothing is audited at that rate")
    version = record.get("model_version")
    return Decision(
        id=identifier, kind=kind, s3_bucket=bucket, s3_key=key,
        predicted=label if isinstance(label, str) and label else None,
        confidence=_number(prediction.get("confidence")),
        inferences=tuple(v for v in (_number(item) for item in inferences) if v is not None),
        recorded_at=str(record.get("recorded_at", "")), time=parse_time(record.get("recorded_at")),
        content_sha256=digest, audit_rate=rate, model_version=version if isinstance(version, str) else None,
    )
