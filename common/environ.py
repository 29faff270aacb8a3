"""One way to set environment variables for a while and put the old values back."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_LOCK = threading.RLock()


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in os.environ until the block ends, then restore (or remove) each one.

    The process has one environment: a patch holds a re-entrant lock for its whole block, so patches
    nest in one thread (restored last-in first-out) and a patch from another thread waits instead
    of restoring values this one still relies on.
    """
    with _LOCK:
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old
