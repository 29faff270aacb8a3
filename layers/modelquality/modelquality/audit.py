"""Which confident decisions are audited: a stable share, chosen by the image's content hash.

The filter marks a confident decision as an audit when the image's place in [0, 1) (the first 53 bits of
its content hash, imaging.preprocess.content_hash) is below AuditRate. The content hash, not the key or the
execution: a retried invocation, a second execution of the same image, or the same picture uploaded under
another key decides the same, and whether an image is audited has nothing to do with whether the model got
it right. The bench draws audits with this same function.
"""

from __future__ import annotations

import hashlib
import math
import re

from modelquality.errors import InvalidAuditRateError

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def parse_audit_rate(raw: object, what: str = "the audit rate") -> float:
    """A share from 0 to 1 (0: no audits, 1: every confident decision); InvalidAuditRateError otherwise."""
    try:
        value = float(raw) if isinstance(raw, str | int | float) and not isinstance(raw, bool) else math.nan
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise InvalidAuditRateError(f"{what} must be a number from 0 to 1, got {raw!r}")
    return value


def image_fraction(identity: str) -> float:
    """The image's place in [0, 1): its content hash's first 53 bits as a fraction, exact in a float, so never 1
    (any other identity, such as an s3:// URI when no hash is known, is hashed first)."""
    digest = identity if SHA256_HEX.match(identity) else hashlib.sha256(identity.encode()).hexdigest()
    return (int(digest[:16], 16) >> 11) / 2**53


def is_audited(identity: str, rate: float) -> bool:
    """Whether a confident decision on this image is audited at `rate`."""
    return image_fraction(identity) < rate
