"""Each function's output in its own log, as CloudWatch Logs keeps one log group per function.

Powertools' Logger and Metrics write to stdout (the Logger keeps the stream it saw at import), so a
router stands in for sys.stdout while the runtime runs: what a handler thread prints goes to the
sink of the function it is running, everything else to the real stdout.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


class LogRouter(io.TextIOBase):
    """Stands in for sys.stdout: a thread's writes go to the sink it is routed to, or to `default`."""

    def __init__(self, default: TextIO) -> None:
        self.default = default
        self._local = threading.local()

    @contextmanager
    def routed_to(self, sink: TextIO | None) -> Iterator[None]:
        previous = getattr(self._local, "sink", None)
        self._local.sink = sink
        try:
            yield
        finally:
            self._local.sink = previous

    def write(self, text: str) -> int:
        sink = getattr(self._local, "sink", None) or self.default
        return sink.write(text)

    def flush(self) -> None:
        sink = getattr(self._local, "sink", None) or self.default
        sink.flush()


@contextmanager
def routed_stdout() -> Iterator[LogRouter]:
    """Install a LogRouter as sys.stdout until the block ends."""
    router = LogRouter(sys.stdout)
    sys.stdout = router
    try:
        yield router
    finally:
        sys.stdout = router.default


@contextmanager
def function_log(folder: Path | None, logical_id: str) -> Iterator[TextIO | None]:
    """`<folder>/<LogicalId>.log`, line-buffered, open for the block (None without a folder)."""
    if folder is None:
        yield None
        return
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{logical_id}.log").open("a", buffering=1) as sink:
        yield sink
