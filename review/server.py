"""Serve the review page until Ctrl-C or SIGTERM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from common.servers import BackgroundServer, wait_for_stop_signal
from review.app import create_app
from review.queue import ReviewQueue
from review.store import open_store


def start_review(source: str, class_names: Sequence[str], *, host: str = "127.0.0.1", port: int = 0,
                 session: Any | None = None) -> tuple[BackgroundServer, ReviewQueue]:
    """The page and API on a background server; the source is checked before anything listens."""
    queue = ReviewQueue(open_store(source, session), class_names)
    return BackgroundServer(create_app(queue), host=host, port=port, name="review").start(), queue


def serve(source: str, class_names: Sequence[str], *, host: str, port: int, session: Any | None = None,
          announce: Callable[[str], None] = print) -> None:
    server, queue = start_review(source, class_names, host=host, port=port, session=session)
    view = queue.view()
    announce(f"review page: http://{host}:{server.port}/  ({view.labelled} labelled, {len(view.items)} left in "
             f"{queue.store.description}; classes {', '.join(queue.class_names)}); Ctrl-C stops")
    try:
        wait_for_stop_signal()
    finally:
        server.stop()
