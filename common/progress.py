"""The progress callback library steps take: they report, the command-line tools display."""

from __future__ import annotations

import threading
from typing import Protocol


class Progress(Protocol):
    """`done` units out of `total` (None while unknown); `note` says which part of the step is running."""

    def __call__(self, done: int, total: int | None, note: str = "") -> None: ...


def no_progress(done: int, total: int | None, note: str = "") -> None:
    """For callers that show nothing."""


class Counter:
    """Turns "one more finished" events from worker threads into absolute `done` counts."""

    def __init__(self, progress: Progress | None, total: int | None, note: str = "") -> None:
        self._progress, self._total, self._note = progress or no_progress, total, note
        self._done = 0
        self._lock = threading.Lock()

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self._done += count
            self._progress(self._done, self._total, self._note)
