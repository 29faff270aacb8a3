"""Review queues for tests and the review benchmark: records as the state machine writes them, with images."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import settings
from common.settings import OFFLINE_BUCKET
from imaging.preprocess import content_hash, to_model_input
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

    @property
    def prefix(self) -> str:
        return "audit" if self.record.get("audit") else "review"

    @property
    def content_sha256(self) -> str:
        return content_hash(to_model_input(self.image))


def queued_images(count: int, *, bucket: str = OFFLINE_BUCKET, seed: int = 0,
                  classes: Sequence[str] | None = None, audits: frozenset[int] = frozenset(),
                  hashes: bool = True, start: int = 0) -> list[QueuedImage]:
    """`count` images, recorded one second apart (so the queue's order is theirs), guessed as each class in turn
    (default: CLASSES), one probability per class: low-confidence decisions, and audits of confident ones at the
    indices in `audits`, as the state machine records them (with the image's content hash; `hashes=False`: as
    records written before content hashes, without it). `start` numbers them on from an earlier call."""
    names = list(classes) if classes is not None else CLASSES
    threshold = settings.confidence_threshold()
    images = []
    for index in range(start, start + count):
        identifier = f"exec-{seed:03d}-{index:05d}"
        key = f"test/photo_{seed:03d}_{index:05d}.png"
        confidence = round(0.5 + 0.4 * ((index * 37) % 100) / 100, 4)
        label = names[index % len(names)]
        rest = round((1 - confidence) / (len(names) - 1), 4)
        inferences = [confidence if name == label else rest for name in names]
        message = f"{key}: top confidence {confidence:.4f} is below the threshold {threshold}"
        record: dict[str, Any] = {
            "s3_bucket": bucket, "s3_key": key, "inferences": inferences,
            "prediction": {"label": label, "confidence": confidence},
            "error": {"errorType": "LowConfidenceError", "errorMessage": message},
            "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:m:{identifier}",
            "recorded_at": f"2026-11-24T10:{index // 60 % 60:02d}:{index % 60:02d}.000Z"}
        image = png_bytes(seed=seed * 100_000 + index)
        if index in audits:
            sure = round(0.95 + 0.04 * ((index * 13) % 10) / 10, 4)
            rest = round((1 - sure) / (len(names) - 1), 4)
            record = {**record, "inferences": [sure if name == label else rest for name in names],
                      "prediction": {"label": label, "confidence": sure}, "audit": True, "audit_rate": 0.02}
            del record["error"]
        if hashes:
            record["content_sha256"] = content_hash(to_model_input(image))
            record["model_version"] = "local-test"
        images.append(QueuedImage(identifier, key, record, image))
    return images


def rerun(images: list[QueuedImage], seed: int) -> list[QueuedImage]:
    """The same images decided again by new executions (new ids, later times): what a second run records."""
    return [QueuedImage(item.id.replace(item.id.split("-")[1], f"{seed:03d}", 1), item.key,
                        {**item.record, "recorded_at": item.record["recorded_at"].replace("T10:", "T11:")},
                        item.image) for item in images]


def write_review_folder(root: Path, images: list[QueuedImage]) -> Path:
    """A folder laid out as the bucket (what an offline run leaves in OUT/bucket/)."""
    for item in images:
        (root / item.prefix).mkdir(parents=True, exist_ok=True)
        (root / item.prefix / f"{item.id}.json").write_text(json.dumps(item.record))
        (root / item.key).parent.mkdir(parents=True, exist_ok=True)
        (root / item.key).write_bytes(item.image)
    return root


def put_review_records(s3: Any, bucket: str, images: list[QueuedImage]) -> None:
    for item in images:
        s3.put_object(Bucket=bucket, Key=f"{item.prefix}/{item.id}.json", Body=json.dumps(item.record).encode())
        s3.put_object(Bucket=bucket, Key=item.key, Body=item.image)


@contextmanager
def review_bucket_on_moto(bucket: str, count: int = 2) -> Iterator[Any]:
    """An S3 client on moto whose `bucket` holds `count` queued images' review records, as the stack writes them."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        put_review_records(client, bucket, queued_images(count, bucket=bucket))
        yield client
