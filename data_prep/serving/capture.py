"""SageMaker endpoint data capture, written by the local endpoint in SageMaker's exact format.

Records are JSON lines; files land at
`<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm-uuid>.jsonl`, several records per file,
like the real service. Request threads only enqueue; one writer thread owns the files, so concurrent
requests never interleave lines. The destination is a folder or an `s3://bucket/prefix` URI.
"""

from __future__ import annotations

import base64
import json
import queue
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.artefacts import is_s3_uri, parse_s3_uri
from common.settings import DEFAULT_VARIANT

CSV_TYPES = {"text/csv"}
JSON_TYPES = {"application/json", "application/jsonlines"}


def encoding_for(content_type: str) -> str:
    """SageMaker's rule: CSV for CSV content types, JSON for JSON ones, BASE64 for everything else."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in CSV_TYPES:
        return "CSV"
    if media_type in JSON_TYPES:
        return "JSON"
    return "BASE64"


def _payload(data: bytes, content_type: str, mode: str) -> dict[str, str]:
    encoding = encoding_for(content_type)
    text = base64.b64encode(data).decode("ascii") if encoding == "BASE64" else data.decode("utf-8")
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def capture_record(request: bytes, request_type: str, response: bytes, response_type: str,
                   when: datetime, event_id: str | None = None) -> dict[str, Any]:
    return {
        "captureData": {
            "endpointInput": _payload(request, request_type, "INPUT"),
            "endpointOutput": _payload(response, response_type, "OUTPUT"),
        },
        "eventMetadata": {"eventId": event_id or str(uuid.uuid4()),
                          "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "eventVersion": "0",
    }


def object_key(endpoint: str, variant: str, when: datetime) -> str:
    return (f"{endpoint}/{variant}/{when:%Y/%m/%d/%H}/"
            f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl")


@dataclass
class _Pending:
    record: dict[str, Any]
    when: datetime


class DataCapture:
    """Buffers records and writes one file per flush (every `flush_seconds`, or `max_records`)."""

    def __init__(self, destination: str, endpoint: str, *, variant: str = DEFAULT_VARIANT,
                 sampling_percentage: int = 100, flush_seconds: float = 1.0, max_records: int = 1000,
                 s3_client: Any = None) -> None:
        if not 0 <= sampling_percentage <= 100:
            raise ValueError(f"sampling_percentage must be 0..100, got {sampling_percentage}")
        self.destination = destination.rstrip("/")
        self.endpoint, self.variant = endpoint, variant
        self.sampling_percentage = sampling_percentage
        self.flush_seconds, self.max_records = flush_seconds, max_records
        self._s3 = s3_client
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._random = random.Random()
        self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
        self._thread.start()

    def capture(self, request: bytes, request_type: str, response: bytes, response_type: str) -> bool:
        """Record one inference (subject to sampling); returns whether it was sampled."""
        if self.sampling_percentage < 100 and self._random.uniform(0, 100) >= self.sampling_percentage:
            return False
        when = datetime.now(UTC)
        self._queue.put(_Pending(capture_record(request, request_type, response, response_type, when), when))
        return True

    def close(self) -> None:
        """Flush what is buffered and stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        batch: list[_Pending] = []
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=self.flush_seconds)
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                    if len(batch) < self.max_records:
                        continue
            except queue.Empty:
                pass
            if batch:
                self._write(batch)
                batch = []

    def _write(self, batch: list[_Pending]) -> None:
        key = object_key(self.endpoint, self.variant, batch[0].when)
        body = "".join(json.dumps(p.record, separators=(",", ":")) + "\n" for p in batch)
        if is_s3_uri(self.destination):
            location = parse_s3_uri(self.destination).join(key)
            client = self._s3
            if client is None:
                import boto3

                client = self._s3 = boto3.client("s3")
            client.put_object(Bucket=location.bucket, Key=location.key, Body=body.encode())
        else:
            path = Path(self.destination) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
