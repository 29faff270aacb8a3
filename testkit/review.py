"""Review queues for tests and the review benchmark: records as the state machine writes them, with images."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import settings
from common.settings import OFFLINE_BUCKET
from testkit.images import png_bytes

# An example class list: a review queue takes its classes as an argument (the CLI gives the template's ClassNames),
# so the tests of the queue and the page do not change with the template.
CLASSES = ["bicycle", "motorcycle"]


@dataclass(frozen=True)
class QueuedImage:
    id: str
    key: str
    record: dict[str, Any]
    image: bytes


def queued_images(count: int, *, bucket: str = OFFLINE_BUCKET, seed: int = 0,
                  classes: Sequence[str] | None = None) -> list[QueuedImage]:
    """`count` low-confidence images, recorded one second apart (so the queue's order is theirs), guessed as each
    class in turn (default: CLASSES), one probability per class."""
    names = list(classes) if classes is not None else CLASSES
    threshold = settings.confidence_threshold()
    images = []
    for index in range(count):
        identifier = f"exec-{seed:03d}-{index:05d}"
        key = f"test/photo_{seed:03d}_{index:05d}.png"
        confidence = round(0.5 + 0.4 * ((index * 37) % 100) / 100, 4)
        label = names[index % len(names)]
        rest = round((1 - confidence) / (len(names) - 1), 4)
        inferences = [confidence if name == label else rest for name in names]
        message = f"{key}: top confidence {confidence:.4f} is below the threshold {threshold}"
        record = {"s3_bucket": bucket, "s3_key": key, "inferences": inferences,
                  "prediction": {"label": label, "confidence": confidence},
                  "error": {"errorType": "LowConfidenceError", "errorMessage": message},
                  "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:m:{identifier}",
                  "recorded_at": f"2026-11-24T10:{index // 60 % 60:02d}:{index % 60:02d}.000Z"}
        images.append(QueuedImage(identifier, key, record, png_bytes(seed=seed * 100_000 + index)))
    return images


def write_review_folder(root: Path, images: list[QueuedImage]) -> Path:
    """A folder laid out as the bucket (what an offline run leaves in OUT/bucket/)."""
    for item in images:
        (root / "review").mkdir(parents=True, exist_ok=True)
        (root / "review" / f"{item.id}.json").write_text(json.dumps(item.record))
        (root / item.key).parent.mkdir(parents=True, exist_ok=True)
        (root / item.key).write_bytes(item.image)
    return root


def put_review_records(s3: Any, bucket: str, images: list[QueuedImage]) -> None:
    for item in images:
        s3.put_object(Bucket=bucket, Key=f"review/{item.id}.json", Body=json.dumps(item.record).encode())
        s3.put_object(Bucket=bucket, Key=item.key, Body=item.image)
