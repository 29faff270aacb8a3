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


def with_parameter_defaults(template: str, defaults: dict[str, str]) -> str:
    """template.yaml's text with these Parameters' `Default:` lines changed, and nothing else."""
    lines = template.splitlines(keepends=True)
    start = lines.index("Parameters:\n")
    for name, value in defaults.items():
        header = next(i for i in range(start, len(lines)) if lines[i] == f"  {name}:\n")
        default = next(i for i in range(header + 1, len(lines)) if lines[i].startswith("    Default:"))
        lines[default] = f"    Default: {json.dumps(value)}\n"
    return "".join(lines)


def repo_copy(dest: Path, parameter_defaults: dict[str, str] | None = None) -> Path:
    """A copy of the source tree (the files git tracks or would track) with template.yaml's defaults changed:
    what a developer who edits a value in its one home runs. `python -m ...` with `copy_environment` runs the copy's
    code, which reads the copy's template."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for relative in filter(None, listed):
        source = REPO_ROOT / relative
        if source.is_file():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            (dest / relative).write_bytes(source.read_bytes())
    template = dest / "template.yaml"
    template.write_text(with_parameter_defaults(template.read_text(), parameter_defaults or {}))
    (dest / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return dest


def copy_environment(copy: Path, home: Path, **extra: str) -> dict[str, str]:
    """bare_aws_environment for a repo_copy: its source tree, not this one, on PYTHONPATH."""
    paths = os.pathsep.join(str(copy / path) for path in (".", "layers/imaging", "layers/driftcheck"))
    return {**bare_aws_environment(home, **extra), "PYTHONPATH": paths}


# The scripted endpoints of the state machine tests answer two probabilities: their runtimes deploy the stack with
# these ClassNames (as `sam deploy --parameter-overrides` would), so the tests do not change with the template's.
TWO_CLASSES = {"ClassNames": "bicycle,motorcycle"}
# Their confident answers (0.96 to 0.99) are confident against this threshold, and their runtimes deploy it too: a
# change of the template's ConfidenceThreshold then breaks only the tests about the threshold, which set their own.
SCRIPTED_THRESHOLD = "0.93"
SCRIPTED_STACK = {**TWO_CLASSES, "ConfidenceThreshold": SCRIPTED_THRESHOLD}


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
