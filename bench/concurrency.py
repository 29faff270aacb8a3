"""Start workers together and time them to the last one's end: the wall clock every concurrent benchmark reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


def run_together(workers: Iterable[Callable[[], None]]) -> float:
    """Run each worker on its own thread, all started before any is waited for; the seconds until all are done."""
    threads = [threading.Thread(target=worker) for worker in workers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started
