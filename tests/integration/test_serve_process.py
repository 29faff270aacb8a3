"""`python -m data_prep serve` as a real process: killed, stopped, refused, flooded.

- SIGKILL under traffic: every record the capture had written is on disk, whole and once;
- SIGTERM and Ctrl-C: the capture is flushed and the process exits 0; records it could not write end it with
  CaptureLostError (exit 3), not 0;
- a capture destination that cannot be written: one named line, exit 2, before anything is served;
- a 50 MB chunked upload: refused with 413 while the server's memory grows far less than the upload.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from common import settings
from common.settings import REPO_ROOT
from testkit.images import png_bytes
from tests.support import HANG_GUARD_S, wait_until

ENDPOINT = settings.endpoint_name()
ANNOUNCE = re.compile(r"serving endpoint \S+ on (http://127\.0\.0\.1:\d+)")


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str

    def invoke(self, session: requests.Session, inference_id: str) -> int:
        return session.post(f"{self.url}/endpoints/{ENDPOINT}/invocations", data=png_bytes(seed=1),
                            timeout=HANG_GUARD_S,
                            headers={"Content-Type": "image/png", "X-Amzn-SageMaker-Inference-Id": inference_id},
                            ).status_code

    def peak_rss_bytes(self) -> int:
        """The process's high-water mark of resident memory (VmHWM): a buffer freed after use still shows."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def serve_command(model_dir: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "data_prep", "serve", "--model-dir", str(model_dir), "--port", "0", *options]


@contextmanager
def served(model_dir: Path, *options: str) -> Iterator[Served]:
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'layers' / 'imaging'}"}
    process = subprocess.Popen(serve_command(model_dir, *options), cwd=REPO_ROOT, env=env, text=True,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        url = None
        while url is None:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}")
            if match := ANNOUNCE.search(line):
                url = match.group(1)
            assert time.monotonic() < deadline, "serve did not announce its URL"
        yield Served(process, url)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(HANG_GUARD_S)
        process.stderr.close()


def captured_ids(folder: Path) -> list[str]:
    return [json.loads(line)["eventMetadata"]["inferenceId"]
            for path in folder.rglob("*.jsonl") for line in path.read_text().splitlines()]


def test_sigkill_under_traffic_loses_nothing_the_capture_had_written(tiny_model, tmp_path):
    """What the writer wrote on its own (no flush, no clean stop: its delay came) survives a SIGKILL whole, once
    each, with more traffic in flight. That a record is written once its delay comes is tests/unit/test_capture.py's
    (on the capture's own clock, so a busy machine cannot make it red)."""
    capture = tmp_path / "capture"
    first = [f"req-{i:02d}" for i in range(20)]
    then = [f"req-{i:02d}" for i in range(20, 30)]
    with served(tiny_model, "--capture", str(capture)) as server, requests.Session() as session:
        for inference_id in first:
            assert server.invoke(session, inference_id) == 200
        wait_until(lambda: session.get(f"{server.url}/capture-health",
                                       timeout=HANG_GUARD_S).json()["written_records"] >= 20,
                   "the capture to write the first 20 records")
        for inference_id in then:  # buffered, or being written, when the kill comes
            assert server.invoke(session, inference_id) == 200
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(HANG_GUARD_S)
    on_disk = captured_ids(capture)
    assert set(first) <= set(on_disk) <= set(first + then)
    assert len(on_disk) == len(set(on_disk))  # whole files only: no record twice, no half line


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_clean_stop_flushes_the_capture(tiny_model, tmp_path, stop):
    capture = tmp_path / "capture"
    with served(tiny_model, "--capture", str(capture)) as server, requests.Session() as session:
        for i in range(5):
            assert server.invoke(session, f"stop-{i}") == 200
        server.process.send_signal(stop)
        assert server.process.wait(HANG_GUARD_S) == 0
        log = server.process.stderr.read()
    assert sorted(captured_ids(capture)) == [f"stop-{i}" for i in range(5)]
    assert "data capture: 5 records written, 0 dropped" in log


def test_a_stop_that_could_not_write_every_record_ends_with_capture_lost_not_0(tiny_model, tmp_path, monkeypatch):
    import data_prep.serving.server as server_module
    from data_prep.serving.capture import CaptureLostError

    capture = tmp_path / "capture"
    announced: list[str] = []

    def traffic_then_a_broken_destination(ready) -> None:
        ready()
        url = ANNOUNCE.search(announced[0]).group(1)
        with requests.Session() as session:
            for i in range(3):
                assert Served(None, url).invoke(session, f"lost-{i}") == 200  # type: ignore[arg-type]
        shutil.rmtree(capture)  # the capture's clock stands still: all 3 records are still buffered, however slow
        capture.write_text("the capture folder replaced by a file: every write fails")

    monkeypatch.setattr(server_module, "wait_for_stop_signal", traffic_then_a_broken_destination)
    with pytest.raises(CaptureLostError) as raised:
        server_module.serve(tiny_model, host="127.0.0.1", port=0, endpoint_name=None,
                            capture_destination=str(capture), sampling_percentage=100, announce=announced.append,
                            close_timeout=1.0, capture_clock=lambda: 0.0)
    assert announced[-1] == "data capture: 0 records written, 3 dropped"
    assert str(raised.value).startswith(f"3 captured records never reached {capture} (last error: ")
    assert raised.value.exit_status == 3


def test_an_unwritable_capture_destination_is_refused_at_start_by_name(tiny_model, tmp_path):
    target = tmp_path / "capture"
    target.write_text("a file where the capture folder should be")
    result = subprocess.run(serve_command(tiny_model, "--capture", str(target)), cwd=REPO_ROOT, text=True,
                            capture_output=True, timeout=HANG_GUARD_S,
                            env={**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'layers/imaging'}"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"CaptureDestinationError: capture destination {target} is a file, not a folder"]


def test_a_50_mb_chunked_upload_is_refused_without_being_buffered(tiny_model):
    with served(tiny_model) as server:
        requests.post(f"{server.url}/invocations", data=png_bytes(), headers={"Content-Type": "image/png"},
                      timeout=HANG_GUARD_S)
        before = server.peak_rss_bytes()

        def chunks():
            for _ in range(50):
                yield b"\0" * (1024 * 1024)

        response = requests.post(f"{server.url}/endpoints/{ENDPOINT}/invocations", data=chunks(), timeout=HANG_GUARD_S,
                                 headers={"Content-Type": "image/png"})
        growth = server.peak_rss_bytes() - before
        assert response.status_code == 413
        assert response.headers["x-amzn-ErrorType"] == "ValidationError"
        assert growth < 12 * 1024 * 1024, f"peak RSS grew {growth / 2**20:.1f} MiB for a 50 MiB upload"
        assert requests.get(f"{server.url}/ping", timeout=HANG_GUARD_S).status_code == 200
