"""Helpers shared by unit and integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.settings import REPO_ROOT

EVENTS_DIR = REPO_ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    """Load a file from events/: the same files `sam local invoke -e` uses."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


@dataclass
class LambdaContextStub:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


SOURCE_PATHS = os.pathsep.join(str(REPO_ROOT / path) for path in (".", "layers/imaging", "layers/driftcheck"))


def bare_aws_variables(home: Path, **extra: str) -> dict[str, str]:
    """What a machine with no AWS setup has: an empty HOME and empty AWS config and credentials files (and no
    credentials or region variables: callers drop every AWS_* variable), plus `extra`."""
    home.mkdir(parents=True, exist_ok=True)
    empty = home / "empty-aws-config"
    empty.write_text("")
    return {"HOME": str(home), "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_EC2_METADATA_DISABLED": "true", **extra}


def bare_aws_environment(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any AWS_* or SCONES_* variable, with bare_aws_variables and the
    source tree on PYTHONPATH: for subprocesses."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("AWS_", "SCONES_", "_SCONES_", "SAGEMAKER_"))}
    return {**environment, "PYTHONPATH": SOURCE_PATHS, **bare_aws_variables(home, **extra)}


@dataclass(frozen=True)
class CliResult:
    status: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_module(module: str, *args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> CliResult:
    """`python -m module args...` in a subprocess: the real entry point, its real exit status and streams."""
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)
    return CliResult(done.returncode, done.stdout, done.stderr)


def run_main(main: Callable[[], None], args: list[str], *, monkeypatch: Any, capsys: Any,
             environment: dict[str, str] | None = None) -> CliResult:
    """A CLI's main() in this process with run_cli's semantics (argv, exit status, stdout and stderr apart), in
    `environment` (replacing every AWS_* variable when given): as fast as CliRunner, as faithful as the script."""
    if environment is not None:
        for name in [name for name in os.environ if name.startswith(("AWS_", "SCONES_"))]:
            monkeypatch.delenv(name)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", [main.__module__, *args])
    capsys.readouterr()
    try:
        main()
        status = 0
    except SystemExit as exited:
        status = exited.code if isinstance(exited.code, int) else 1
    captured = capsys.readouterr()
    return CliResult(status, captured.out, captured.err)


# How long a test waits for an event before calling it a hang. It bounds nothing a test asserts: a test waits for
# what it needs to see (a file written, a process ended), never for a time to pass, so a busy machine only makes it
# slower, never red.
HANG_GUARD_S = 120.0


def wait_until(condition: Callable[[], Any], what: str, *, poll_s: float = 0.01) -> Any:
    """Wait for `condition()` to be truthy and return its value; AssertionError naming `what` after HANG_GUARD_S."""
    import time

    deadline = time.monotonic() + HANG_GUARD_S
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {HANG_GUARD_S:.0f} s: a hang")
        time.sleep(poll_s)
    return value
