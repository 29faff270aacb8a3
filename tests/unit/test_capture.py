"""Data capture that cannot go blind: written within the delay under steady traffic, failed writes retried
and visible, bounded loss counted, unwritable destinations refused at start, close() flushes.

Faults are real: a capture folder replaced by a file mid-run, an S3 client that fails then recovers, a write
that hangs. (The crash test, SIGKILL of a real `python -m data_prep serve`, is in tests/integration.)
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from common.errors import ExitStatus
from data_prep.serving.capture import (
    CaptureDestinationError,
    CaptureDestinationUnavailableError,
    DataCapture,
    capture_record,
)
from tests.support import HANG_GUARD_S, wait_until

IMAGE, ANSWER = b"\x89PNG fake image", b"[0.9, 0.1]"


def records(root: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(root.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def inference_ids(root: Path) -> set[str]:
    return {record["eventMetadata"]["inferenceId"] for record in records(root)}


def send(capture: DataCapture, *ids: str, variant: str | None = None) -> None:
    for inference_id in ids:
        capture.capture(IMAGE, "image/png", ANSWER, "application/json", variant=variant, inference_id=inference_id)


def wait_for(condition) -> None:
    wait_until(condition, "the capture's writer")


class ManualClock:
    """The capture's clock, moved by the test: how old a record is never depends on how busy the machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_steady_traffic_is_written_once_its_oldest_record_is_due_not_after_a_pause():
    clock = ManualClock()
    sink = RecordingSink()
    capture = DataCapture("unused", "scones", max_delay_seconds=0.2, sink=sink, clock=clock)
    try:
        for i in range(4):  # a record every 0.05 s: never 0.2 s of silence
            send(capture, f"r{i}")
            clock.now += 0.05
        assert capture.health().written_records == 0  # the oldest is 0.2 s old: not yet due
        send(capture, "r4")
        clock.now += 0.05  # the oldest is now 0.25 s old, the newest 0.05 s
        wait_for(lambda: capture.health().written_records == 5)  # (waiting on the newest, it would never come)
        assert [ids for _, ids in sink.files] == [[f"r{i}" for i in range(5)]]
    finally:
        capture.close()
    assert capture.health().written_files == 1


def test_a_file_where_the_folder_should_be_is_refused_at_start(tmp_path):
    target = tmp_path / "capture"
    target.write_text("not a folder")
    expected = re.escape(f"capture destination {target} is a file, not a folder")
    with pytest.raises(CaptureDestinationError, match=expected) as raised:
        DataCapture(str(target), "scones")
    assert raised.value.exit_status == ExitStatus.INPUT
    blocked = target / "below"  # a folder that cannot be created under a file
    expected = re.escape(f"capture destination {blocked} cannot be written: Not a directory")
    with pytest.raises(CaptureDestinationError, match=expected):
        DataCapture(str(blocked), "scones")


def test_a_folder_replaced_by_a_file_mid_run_is_retried_visible_and_recovers(tmp_path, caplog):
    folder = tmp_path / "capture"
    capture = DataCapture(str(folder), "scones", max_delay_seconds=0.05, retry_initial_seconds=0.02,
                          retry_max_seconds=0.1)
    try:
        send(capture, "before")
        assert capture.flush(HANG_GUARD_S)
        shutil.rmtree(folder)
        folder.write_text("an operator's mistake")
        with caplog.at_level(logging.INFO, logger="data_prep.serving.capture"):
            send(capture, "during-1", "during-2", "during-3")
            wait_for(lambda: capture.health().consecutive_failures >= 3)
            health = capture.health()
            assert (health.status, health.buffered_records, health.dropped_records) == ("failing", 3, 0)
            assert health.last_error.startswith(("FileExistsError", "NotADirectoryError"))
            folder.unlink()
            assert capture.flush(HANG_GUARD_S)
        assert capture.health().status == "ok"
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings and f"cannot write to {folder}" in warnings[0].getMessage()
        assert any("recovered after" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    finally:
        capture.close()
    assert inference_ids(folder) == {"during-1", "during-2", "during-3"}  # "before" went with the old folder
    health = capture.health()
    assert health.written_records == 4 and health.failed_writes >= 3 and health.dropped_records == 0


class FlakyS3:
    """An S3 client whose first `failures` capture writes fail (the start-up probe succeeds)."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error = failures, error
        self.objects: dict[str, bytes] = {}
        self.attempts = 0

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict:  # noqa: N803 - boto3's names
        if "/.capture-check-" not in Key:
            self.attempts += 1
            if self.attempts <= self.failures:
                raise self.error
        self.objects[f"{Bucket}/{Key}"] = Body
        return {}

    def delete_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803
        self.objects.pop(f"{Bucket}/{Key}", None)
        return {}


@pytest.mark.parametrize("error", [
    ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject"),
    EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"),
])
def test_s3_writes_that_fail_then_succeed_lose_nothing(error):
    s3 = FlakyS3(failures=3, error=error)
    capture = DataCapture("s3://bucket/capture", "scones", max_delay_seconds=0.02, retry_initial_seconds=0.01,
                          s3_client=s3)
    send(capture, "a", "b")
    wait_for(lambda: s3.attempts >= 4)
    capture.close()
    assert list(s3.objects) and all(key.startswith("bucket/capture/scones/AllTraffic/") for key in s3.objects)
    lines = [json.loads(line) for body in s3.objects.values() for line in body.decode().splitlines()]
    assert sorted(line["eventMetadata"]["inferenceId"] for line in lines) == ["a", "b"]
    health = capture.health()
    assert (health.failed_writes, health.dropped_records, health.status) == (3, 0, "ok")


def test_an_s3_destination_that_cannot_be_written_is_refused_at_start():
    s3 = FlakyS3(failures=0, error=RuntimeError())
    s3.put_object = lambda **_: (_ for _ in ()).throw(  # type: ignore[method-assign]
        ClientError({"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}}, "PutObject"))
    with pytest.raises(CaptureDestinationUnavailableError,
                       match="capture destination s3://missing/capture cannot be written: .*NoSuchBucket") as raised:
        DataCapture("s3://missing/capture", "scones", s3_client=s3)
    assert raised.value.exit_status == ExitStatus.ENVIRONMENT


def test_past_the_buffer_bound_the_oldest_records_are_dropped_counted_and_logged(tmp_path, caplog):
    folder = tmp_path / "capture"
    capture = DataCapture(str(folder), "scones", max_delay_seconds=0.01, retry_initial_seconds=0.01,
                          retry_max_seconds=0.02, max_buffer_bytes=3 * (len(IMAGE) + len(ANSWER) + 512))
    folder.rmdir()
    folder.write_text("blocked")
    with caplog.at_level(logging.ERROR, logger="data_prep.serving.capture"):
        send(capture, *[f"r{i}" for i in range(10)])
        wait_for(lambda: capture.health().dropped_records == 7)
    assert any("lost records" in r.getMessage() and "buffer is full" in r.getMessage() for r in caplog.records)
    folder.unlink()
    capture.close()
    assert inference_ids(folder) == {"r7", "r8", "r9"}  # the newest survive
    assert capture.health().dropped_records == 7


def test_close_flushes_at_once_even_with_a_long_delay(tmp_path):
    capture = DataCapture(str(tmp_path), "scones", max_delay_seconds=60, clock=ManualClock())
    send(capture, "a", "b", "c")
    capture.close()  # the clock never moves: only close() can have written them
    assert inference_ids(tmp_path) == {"a", "b", "c"}


def test_close_with_a_dead_destination_gives_up_at_its_timeout_and_counts_the_loss(tmp_path):
    folder = tmp_path / "capture"
    capture = DataCapture(str(folder), "scones", max_delay_seconds=60, retry_initial_seconds=0.05)
    folder.rmdir()
    folder.write_text("blocked")
    send(capture, "a", "b")
    capture.close(timeout=0.3)
    capture._thread.join(HANG_GUARD_S)  # (close's own join waits 5 s more: a busy machine must not make this red)
    assert not capture._thread.is_alive()  # the writer gave up at close's timeout (a writer retrying forever hangs)
    health = capture.health()
    assert (health.dropped_records, health.buffered_records, health.written_records) == (2, 0, 0)
    assert capture.capture(IMAGE, "image/png", ANSWER, "application/json") is False  # closed: counted, not kept
    assert capture.health().dropped_records == 3


class RecordingSink:
    """A destination that keeps each file's inference ids, in the order they were written."""

    description = "a recording destination"

    def __init__(self) -> None:
        self.files: list[tuple[str, list[str]]] = []

    def check(self) -> None:
        pass

    def write(self, key: str, body: bytes) -> None:
        self.files.append((key, [json.loads(line)["eventMetadata"]["inferenceId"] for line in body.splitlines()]))


class HangingSink:
    description = "a destination that hangs"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.written: list[str] = []

    def check(self) -> None:
        pass

    def write(self, key: str, body: bytes) -> None:
        self.release.wait(HANG_GUARD_S)
        self.written.append(key)


def test_a_write_that_hangs_shows_as_stalled():
    sink = HangingSink()
    capture = DataCapture("unused", "scones", max_delay_seconds=0.01, stall_seconds=0.2, sink=sink)
    send(capture, "a")
    wait_for(lambda: capture.health().status == "stalled")
    assert capture.health().buffered_records == 1
    sink.release.set()
    capture.close()
    assert capture.health().status == "ok" and len(sink.written) == 1


def test_each_variant_gets_its_own_files_in_sagemakers_layout(tmp_path):
    capture = DataCapture(str(tmp_path), "scones")
    send(capture, "c1", variant="champion")
    send(capture, "x1", variant="challenger")
    send(capture, "c2", variant="champion")
    capture.close()
    by_variant: dict[str, set[str]] = {}
    for path in tmp_path.rglob("*.jsonl"):
        parts = path.relative_to(tmp_path).parts
        assert len(parts) == 7 and parts[0] == "scones"  # endpoint/variant/yyyy/mm/dd/hh/file
        ids = {json.loads(line)["eventMetadata"]["inferenceId"] for line in path.read_text().splitlines()}
        by_variant.setdefault(parts[1], set()).update(ids)
    assert by_variant == {"champion": {"c1", "c2"}, "challenger": {"x1"}}


def test_inference_id_is_written_in_sagemakers_event_metadata_only_when_sent():
    from datetime import UTC, datetime

    when = datetime(2024, 11, 25, 23, 21, 43, tzinfo=UTC)
    with_id = capture_record(IMAGE, "image/png", ANSWER, "application/json", when, "e-1", "order-42")
    assert with_id["eventMetadata"] == {"eventId": "e-1", "inferenceId": "order-42",
                                        "inferenceTime": "2024-11-25T23:21:43Z"}
    assert list(with_id["eventMetadata"]) == ["eventId", "inferenceId", "inferenceTime"]
    without = capture_record(IMAGE, "image/png", ANSWER, "application/json", when, "e-2")
    assert without["eventMetadata"] == {"eventId": "e-2", "inferenceTime": "2024-11-25T23:21:43Z"}
