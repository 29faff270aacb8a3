"""SageMaker endpoint data capture, written by the local endpoint in SageMaker's exact format.

Records are JSON lines; files land at
`<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm-uuid>.jsonl`, several records per file,
like the real service. The destination is a folder or an `s3://bucket/prefix` URI.

Why it is built this way (monitoring must not go blind without anyone noticing):

- **Written within a second, whatever the traffic.** A record is written at the latest `max_delay_seconds`
  after it was captured (the age of the oldest buffered record decides, not a pause in traffic), or as soon
  as `max_records_per_file` are waiting. A crash loses at most the last second of records. Files appear
  whole: a folder file is written under a hidden `.part` name, synced and renamed.
- **Failed writes are retried, records kept.** A write that fails (disk full, folder replaced, S3 error)
  puts its records back at the head of the buffer and is retried with exponential backoff
  (`retry_initial_seconds` doubling to `retry_max_seconds`). The buffer is bounded by `max_buffer_bytes`;
  past it the OLDEST records are dropped, counted in `dropped_records` and logged: recent traffic is what a
  drift check needs, and inference never waits on capture.
- **A capture that cannot be written is visible**: a WARNING log line on the first failure (and every
  `LOG_EVERY_SECONDS` while it lasts), an INFO line on recovery, and `health()` (the endpoint serves it at
  `GET /capture-health`: HTTP 503 while failing or stalled).
- **Refused at start-up by name**: a destination that cannot be written (a file where the folder should
  be, a missing bucket, no access) raises CaptureDestinationError / CaptureDestinationUnavailableError
  before the endpoint serves anything.
- **Clean shutdown flushes**: `close()` writes everything buffered, retrying until its timeout.

Request threads only append to the buffer; one writer thread owns the files, so concurrent requests never
interleave lines, and the base64/JSON encoding happens off the request path.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from common.artefacts import S3Location, is_s3_uri, parse_s3_uri
from common.aws_errors import explain_aws_error
from common.errors import EnvironmentProblem, InputError
from common.settings import DEFAULT_VARIANT

CSV_TYPES = {"text/csv"}
JSON_TYPES = {"application/json", "application/jsonlines"}
RECORD_OVERHEAD_BYTES = 512  # metadata and JSON framing per record, for the buffer bound
LOG_EVERY_SECONDS = 10.0

log = logging.getLogger(__name__)


class CaptureDestinationError(InputError):
    """The capture destination given is not a folder that can be written (a file, say)."""


class CaptureDestinationUnavailableError(EnvironmentProblem):
    """The S3 capture destination cannot be written: no bucket, no access, no credentials, no network."""


class CaptureLostError(EnvironmentProblem):
    """Records were answered but never reached the capture destination (buffer full, or the destination still
    failing when the server stopped): `serve` ends with this, not 0, so a supervisor sees monitoring lost data."""


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
                   when: datetime, event_id: str | None = None, inference_id: str | None = None) -> dict[str, Any]:
    """One capture line as SageMaker writes it; `inferenceId` only when the caller sent an InferenceId."""
    metadata = {"eventId": event_id or str(uuid.uuid4())}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "captureData": {
            "endpointInput": _payload(request, request_type, "INPUT"),
            "endpointOutput": _payload(response, response_type, "OUTPUT"),
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


def object_key(endpoint: str, variant: str, when: datetime) -> str:
    return (f"{endpoint}/{variant}/{when:%Y/%m/%d/%H}/"
            f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl")


class Sink(Protocol):
    """Where capture files go: `check` once at start-up (raising a named error), then `write` per file."""

    description: str

    def check(self) -> None: ...

    def write(self, key: str, body: bytes) -> None: ...


class FolderSink:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)

    def check(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise CaptureDestinationError(f"capture destination {self.root} is a file, not a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".capture-check-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise CaptureDestinationError(
                f"capture destination {self.root} cannot be written: {error.strerror or error}") from error

    def write(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")  # readers take *.jsonl only: never a half file
        with open(partial, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)


class S3Sink:
    def __init__(self, location: S3Location, client: Any) -> None:
        self.location, self.client = location, client
        self.description = location.uri

    def check(self) -> None:
        """Write (then try to delete) a zero-byte object: the one test that the capture's PutObject works."""
        probe = self.location.join(f".capture-check-{uuid.uuid4().hex}")
        try:
            self.client.put_object(Bucket=probe.bucket, Key=probe.key, Body=b"")
        except Exception as error:  # noqa: BLE001 - any AWS or network error: refuse the destination by name
            reason = explain_aws_error(error) or f"{type(error).__name__}: {error}"
            raise CaptureDestinationUnavailableError(
                f"capture destination {self.location.uri} cannot be written: {reason}") from error
        try:
            self.client.delete_object(Bucket=probe.bucket, Key=probe.key)
        except Exception:  # noqa: BLE001 - capture needs PutObject only; a leftover empty probe is harmless
            log.info("could not delete the capture write check %s", probe.uri)

    def write(self, key: str, body: bytes) -> None:
        target = self.location.join(key)
        self.client.put_object(Bucket=target.bucket, Key=target.key, Body=body)


def sink_for(destination: str, s3_client: Any = None) -> Sink:
    if is_s3_uri(destination):
        if s3_client is None:
            from common.aws import session

            s3_client = session().client("s3")
        return S3Sink(parse_s3_uri(destination.rstrip("/")), s3_client)
    return FolderSink(Path(destination))


@dataclass
class _Pending:
    request: bytes
    request_type: str
    response: bytes
    response_type: str
    variant: str
    when: datetime
    received: float  # the capture's clock (time.monotonic) at capture
    event_id: str
    inference_id: str | None

    @property
    def size(self) -> int:
        return len(self.request) + len(self.response) + RECORD_OVERHEAD_BYTES

    def line(self) -> str:
        record = capture_record(self.request, self.request_type, self.response, self.response_type, self.when,
                                self.event_id, self.inference_id)
        return json.dumps(record, separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class CaptureHealth:
    """What `GET /capture-health` answers. `status`: ok, failing (the last write failed) or stalled (records
    waiting far longer than they should, without an error: a write that hangs)."""

    status: str
    destination: str
    buffered_records: int
    oldest_buffered_seconds: float
    written_records: int
    written_files: int
    dropped_records: int
    failed_writes: int
    consecutive_failures: int
    last_error: str | None
    last_error_at: str | None
    last_write_at: str | None

    @property
    def healthy(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DataCapture:
    """Buffers records; one writer thread writes them within `max_delay_seconds` (see the module docstring)."""

    def __init__(self, destination: str, endpoint: str, *, variant: str = DEFAULT_VARIANT,
                 sampling_percentage: int = 100, max_delay_seconds: float = 1.0, max_records_per_file: int = 1000,
                 max_buffer_bytes: int = 256 * 1024 * 1024, retry_initial_seconds: float = 0.1,
                 retry_max_seconds: float = 5.0, stall_seconds: float | None = None, s3_client: Any = None,
                 sink: Sink | None = None, seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= sampling_percentage <= 100:
            raise ValueError(f"sampling_percentage must be 0..100, got {sampling_percentage}")
        self.destination = destination.rstrip("/")
        self.endpoint, self.variant = endpoint, variant
        self.sampling_percentage = sampling_percentage
        self.max_delay_seconds, self.max_records_per_file = max_delay_seconds, max_records_per_file
        self.max_buffer_bytes = max_buffer_bytes
        self.retry_initial_seconds, self.retry_max_seconds = retry_initial_seconds, retry_max_seconds
        self.stall_seconds = stall_seconds if stall_seconds is not None else max(10.0, 10 * max_delay_seconds)
        self._clock = clock  # how old a record is (when a file is due, what health reports); tests drive their own
        self._sink = sink or sink_for(self.destination, s3_client)
        self._sink.check()  # refuse an unwritable destination before anything is served
        self._random = random.Random(seed)
        self._cond = threading.Condition()
        self._buffer: deque[_Pending] = deque()
        self._buffered_bytes = 0
        self._in_flight = 0  # records being written right now (not in the buffer)
        self._in_flight_since = 0.0  # when the oldest of them was captured
        self._closing = False
        self._close_deadline = float("inf")
        self._flush_wanted = False
        self._written_records = self._written_files = self._dropped = 0
        self._failed_writes = self._consecutive_failures = 0
        self._last_error: str | None = None
        self._last_error_at: str | None = None
        self._last_write_at: str | None = None
        self._last_drop_log = self._last_failure_log = float("-inf")
        self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
        self._thread.start()

    # -- request side ------------------------------------------------------------------------------------------

    def capture(self, request: bytes, request_type: str, response: bytes, response_type: str, *,
                variant: str | None = None, inference_id: str | None = None) -> bool:
        """Record one inference (subject to sampling); returns whether it was sampled. Never blocks on I/O."""
        if self.sampling_percentage < 100 and self._random.uniform(0, 100) >= self.sampling_percentage:
            return False
        pending = _Pending(request, request_type, response, response_type, variant or self.variant,
                           datetime.now(UTC), self._clock(), str(uuid.uuid4()), inference_id)
        with self._cond:
            if self._closing:
                self._drop(1, "capture is closed")
                return False
            self._buffer.append(pending)
            self._buffered_bytes += pending.size
            self._enforce_bound()
            if len(self._buffer) == 1 or len(self._buffer) >= self.max_records_per_file:
                self._cond.notify_all()
        return True

    def _enforce_bound(self) -> None:
        dropped = 0
        while self._buffered_bytes > self.max_buffer_bytes and len(self._buffer) > 1:
            oldest = self._buffer.popleft()
            self._buffered_bytes -= oldest.size
            dropped += 1
        if dropped:
            self._drop(dropped, f"the capture buffer is full ({self.max_buffer_bytes} bytes)")

    def _drop(self, count: int, why: str) -> None:
        self._dropped += count
        now = time.monotonic()
        if now - self._last_drop_log >= LOG_EVERY_SECONDS:
            self._last_drop_log = now
            log.error("data capture to %s lost records: %s; %d dropped so far", self._sink.description, why,
                      self._dropped)

    # -- health, flush, close ----------------------------------------------------------------------------------

    def health(self) -> CaptureHealth:
        with self._cond:
            captured = [self._buffer[0].received] if self._buffer else []
            if self._in_flight:
                captured.append(self._in_flight_since)
            oldest = self._clock() - min(captured) if captured else 0.0
            if self._consecutive_failures:
                status = "failing"
            elif oldest > self.stall_seconds:
                status = "stalled"
            else:
                status = "ok"
            return CaptureHealth(
                status=status, destination=self._sink.description,
                buffered_records=len(self._buffer) + self._in_flight, oldest_buffered_seconds=round(oldest, 3),
                written_records=self._written_records, written_files=self._written_files,
                dropped_records=self._dropped, failed_writes=self._failed_writes,
                consecutive_failures=self._consecutive_failures, last_error=self._last_error,
                last_error_at=self._last_error_at, last_write_at=self._last_write_at)

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything buffered now; True when it all reached the destination within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_wanted = True
            self._cond.notify_all()
            try:
                while self._buffer or self._in_flight:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flush_wanted = False

    def close(self, timeout: float = 20.0) -> None:
        """Flush what is buffered (retrying failed writes until `timeout`) and stop the writer.

        SageMaker sends SIGKILL 30 s after SIGTERM, hence the 20 s default.
        """
        with self._cond:
            if not self._closing:
                self._closing = True
                self._close_deadline = time.monotonic() + timeout
            self._cond.notify_all()
        self._thread.join(timeout + 5)

    # -- writer thread -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.retry_initial_seconds
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            if self._write(batch):
                delay = self.retry_initial_seconds
                continue
            with self._cond:  # wait before retrying; close() wakes us to try at once
                if time.monotonic() >= self._close_deadline:
                    lost = len(self._buffer)
                    self._buffer.clear()
                    self._buffered_bytes = 0
                    self._drop(lost, "capture closed before the destination accepted them")
                    self._cond.notify_all()
                    return
                self._cond.wait(min(delay, max(0.0, self._close_deadline - time.monotonic())))
            delay = min(delay * 2, self.retry_max_seconds)

    def _next_batch(self) -> list[_Pending] | None:
        """Wait (holding the condition) until a file is due; take its records out of the buffer."""
        while True:
            if self._buffer:
                due = self._buffer[0].received + self.max_delay_seconds - self._clock()
                full = len(self._buffer) >= self.max_records_per_file
                if due <= 0 or full or self._closing or self._flush_wanted:
                    return self._take_batch()
                self._cond.wait(due)
            elif self._closing:
                return None
            else:
                self._cond.wait()

    def _take_batch(self) -> list[_Pending]:
        """Up to max_records_per_file of the oldest records of one variant (a file belongs to one variant)."""
        variant = self._buffer[0].variant
        batch: list[_Pending] = []
        kept: deque[_Pending] = deque()
        while self._buffer and len(batch) < self.max_records_per_file:
            item = self._buffer.popleft()
            (batch if item.variant == variant else kept).append(item)
        self._buffer.extendleft(reversed(kept))
        self._buffered_bytes -= sum(item.size for item in batch)
        self._in_flight, self._in_flight_since = len(batch), batch[0].received
        return batch

    def _write(self, batch: list[_Pending]) -> bool:
        key = object_key(self.endpoint, batch[0].variant, batch[0].when)
        try:
            self._sink.write(key, "".join(item.line() for item in batch).encode())
        except Exception as error:  # noqa: BLE001 - any failure of the destination: keep the records, retry
            self._failed(batch, error)
            return False
        recovered = self._consecutive_failures  # (only this thread changes it)
        if recovered:  # said before the success is published: whoever waits for it (flush, health) finds the line
            log.info("data capture to %s recovered after %d failed writes; %d records written", self._sink.description,
                     recovered, len(batch))
        with self._cond:
            self._in_flight = 0
            self._written_records += len(batch)
            self._written_files += 1
            self._consecutive_failures = 0
            self._last_write_at = _now_iso()
            self._cond.notify_all()
        return True

    def _failed(self, batch: list[_Pending], error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        with self._cond:
            self._buffer.extendleft(reversed(batch))  # back at the head, oldest first
            self._buffered_bytes += sum(item.size for item in batch)
            self._in_flight = 0
            self._enforce_bound()
            self._failed_writes += 1
            self._consecutive_failures += 1
            self._last_error, self._last_error_at = message, _now_iso()
            first = self._consecutive_failures == 1
            buffered = len(self._buffer)
            self._cond.notify_all()
        now = time.monotonic()
        if first or now - self._last_failure_log >= LOG_EVERY_SECONDS:
            self._last_failure_log = now
            log.warning("data capture cannot write to %s (%s); retrying with backoff, %d records buffered",
                        self._sink.description, message, buffered)
