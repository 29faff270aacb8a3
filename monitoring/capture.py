"""Read SageMaker endpoint data capture back: every record of every JSONL file, in inference order.

Works on `s3://bucket/prefix` (what a deployed endpoint writes) and on a local folder (what the local
endpoint writes) alike. A line that is not a capture record is counted and reported, never fatal:
monitoring must not go blind because one file was cut short.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from common.artefacts import is_s3_uri, parse_s3_uri


@dataclass(frozen=True)
class CapturedInference:
    event_id: str
    time: datetime
    input_type: str
    input: bytes
    probabilities: list[float]
    source: str  # file:line, for reporting

    @property
    def confidence(self) -> float:
        return max(self.probabilities)

    @property
    def predicted(self) -> int:
        return self.probabilities.index(self.confidence)


@dataclass
class CaptureSet:
    records: list[CapturedInference] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # "file:line: why"
    files: int = 0


def _decode(payload: dict[str, Any]) -> bytes:
    data = payload["data"]
    if payload.get("encoding") == "BASE64":
        return base64.b64decode(data, validate=True)
    return str(data).encode()


def parse_record(line: str, source: str) -> CapturedInference:
    record = json.loads(line)
    capture = record["captureData"]
    output = json.loads(_decode(capture["endpointOutput"]))
    if not isinstance(output, list) or not output or not all(isinstance(v, (int, float)) for v in output):
        raise ValueError(f"output is not a probability list: {str(output)[:60]}")
    metadata = record["eventMetadata"]
    return CapturedInference(
        event_id=metadata["eventId"],
        time=datetime.fromisoformat(metadata["inferenceTime"].replace("Z", "+00:00")),
        input_type=capture["endpointInput"].get("observedContentType", ""),
        input=_decode(capture["endpointInput"]),
        probabilities=[float(v) for v in output],
        source=source,
    )


def _local_files(folder: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(folder.rglob("*.jsonl")):
        yield str(path), path.read_text(errors="replace")


def _s3_files(uri: str, s3: Any) -> Iterator[tuple[str, str]]:
    location = parse_s3_uri(uri)
    bucket, prefix = location.bucket, location.key
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".jsonl"):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                yield f"s3://{bucket}/{item['Key']}", body.decode(errors="replace")


def read_capture(location: str | Path, *, s3: Any = None) -> CaptureSet:
    """All records under `location` (a folder or s3:// URI), ordered by inferenceTime."""
    text = str(location)
    files = _s3_files(text, s3) if is_s3_uri(text) else _local_files(Path(text))
    result = CaptureSet()
    order: list[tuple[datetime, int, CapturedInference]] = []
    for name, content in files:
        result.files += 1
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            source = f"{name}:{number}"
            try:
                inference = parse_record(line, source)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as error:
                result.malformed.append(f"{source}: {type(error).__name__}: {error}")
                continue
            order.append((inference.time, len(order), inference))
    result.records = [inference for _, _, inference in sorted(order, key=lambda item: (item[0], item[1]))]
    return result
