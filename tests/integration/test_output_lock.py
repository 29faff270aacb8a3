"""One run per output folder, with real processes: `workflow run`, `classify-prefix --offline` and `serve-api` on a
folder another process is running on are refused in one line (exit 2) naming it, and write nothing; a lock whose
process was killed is taken over with a note."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from common.outlock import LOCK_FILE
from testkit.images import png_bytes
from tests.support import HANG_GUARD_S, bare_aws_environment, run_module


@contextmanager
def serving_api(model_dir: Path, out: Path, cwd: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`workflow serve-api --out OUT` as a real process, once it says it is up (its stderr lines so far)."""
    command = [sys.executable, "-m", "workflow", "serve-api", "--model-dir", str(model_dir), "--out", str(out)]
    process = subprocess.Popen(command, cwd=cwd, env=bare_aws_environment(cwd / "home"), text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: list[str] = []
    try:
        while not lines or lines[-1] != "Ctrl-C stops":
            line = process.stderr.readline()
            if not line:
                raise AssertionError(f"serve-api ended ({process.wait(HANG_GUARD_S)}) before it was up: {lines}")
            lines.append(line.rstrip("\n"))
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(HANG_GUARD_S)
        process.stderr.close()


def files_under(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def holder(tiny_model, tmp_path_factory):
    """A serve-api holding OUT, and the command line the refusals must name."""
    root = tmp_path_factory.mktemp("locked")
    out = root / "out"
    with serving_api(tiny_model, out, root) as (process, _):
        command = shlex.join([sys.executable, "-m", "workflow", "serve-api", "--model-dir", str(tiny_model),
                              "--out", str(out)])
        yield root, out, process, command


@pytest.mark.parametrize("second", ["run", "classify-prefix", "serve-api"])
def test_a_second_command_on_a_folder_in_use_is_refused_naming_the_running_one(second, holder, tiny_model):
    root, out, process, command = holder
    images = root / "images"
    images.mkdir(exist_ok=True)
    (images / "a.png").write_bytes(png_bytes())
    arguments = {"run": ["run", "--model-dir", str(tiny_model)],
                 "classify-prefix": ["classify-prefix", "--offline", "--model-dir", str(tiny_model), "--prefix",
                                     str(images)],
                 "serve-api": ["serve-api", "--model-dir", str(tiny_model)]}[second]
    before = files_under(out)

    result = run_module("workflow", *arguments, "--out", str(out), env=bare_aws_environment(root / "home"), cwd=root)

    assert (result.status, result.stdout) == (2, "")
    (line,) = result.stderr_lines
    head = f"OutputFolderBusyError: {out} is in use by pid {process.pid} ({command}, since "
    assert line.startswith(head), line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\): wait for it to end, or give another --out",
                        line[len(head):]), line
    assert files_under(out) == before  # nothing written: not its log, not a capture
    assert process.poll() is None  # the running one goes on


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_note(tiny_model, tmp_path):
    out = tmp_path / "out"
    with serving_api(tiny_model, out, tmp_path) as (killed, _):
        killed.send_signal(signal.SIGKILL)
        killed.wait(HANG_GUARD_S)
    left = json.loads((out / LOCK_FILE).read_text())
    assert left["pid"] == killed.pid  # the kernel released the lock; the name it wrote stays

    with serving_api(tiny_model, out, tmp_path) as (process, lines):
        assert lines[0] == (f"note: took over the lock of {out} left by pid {killed.pid} ({left['command']}, since "
                            f"{left['since']}), which is no longer running")
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == process.pid
        process.send_signal(signal.SIGTERM)
        assert process.wait(HANG_GUARD_S) == 0
    assert (out / LOCK_FILE).read_text() == ""  # a clean end leaves no name behind
