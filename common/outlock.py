"""One run per output folder: the commands that write a whole `--out` folder take its lock first.

Two `workflow run`s on one folder both exited 0 and mixed their data capture, so each then reported a drift neither
had alone. Now the second one is refused in one line (OutputFolderBusyError, exit 2) naming the process that holds
the folder, before it writes anything (its log included).

The lock is `fcntl.flock` on `<out>/.lock`, which the kernel releases when its process ends, however it ends
(SIGKILL included): a lock can never outlive its owner, so no pid is ever guessed stale. The owner writes its pid and
command line in the file and empties it on a clean exit; a file still naming someone when the lock is free was left
by a process that died, and taking it over says so in one note.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import InputError

LOCK_FILE = ".lock"


class OutputFolderBusyError(InputError):
    """Another process is running on this output folder (it holds the folder's lock)."""


def this_command() -> str:
    """This process's command line as it was typed (`.venv/bin/python -m workflow run --out out`)."""
    try:
        words = Path("/proc/self/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        return shlex.join(word.decode(errors="replace") for word in words)
    except OSError:  # not Linux
        return shlex.join([sys.executable, *sys.argv])


def describe_owner(owner: dict[str, Any]) -> str:
    return f"pid {owner.get('pid', '?')} ({owner.get('command', 'command unknown')}, since {owner.get('since', '?')})"


def _read_owner(handle: Any) -> dict[str, Any] | None:
    handle.seek(0)
    text = handle.read().strip()
    if not text:
        return None
    try:
        owner = json.loads(text)
    except json.JSONDecodeError:
        return {"command": f"unreadable lock file: {text[:80]!r}"}
    return owner if isinstance(owner, dict) else None


@contextmanager
def output_folder_lock(folder: Path, note: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold `folder`'s lock for the block (the folder is created); OutputFolderBusyError when another process holds
    it. A lock left by a process that is gone is taken over, and `note` says whose it was."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(handle)
            who = describe_owner(owner) if owner else "another process (starting: it has not written its name yet)"
            raise OutputFolderBusyError(
                f"{folder} is in use by {who}: wait for it to end, or give another --out") from None
        left = _read_owner(handle)
        if left is not None and note is not None:
            note(f"note: took over the lock of {folder} left by {describe_owner(left)}, which is no longer running")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": this_command(),
                                 "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}) + "\n")
        handle.flush()
        try:
            yield path
        finally:
            handle.seek(0)
            handle.truncate()  # a clean end leaves no name: only a process that died leaves one
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
