"""Serve the review page until Ctrl-C or SIGTERM."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Sequence
from typing import Any

from common.artefacts import is_s3_uri
from common.servers import BackgroundServer, wait_for_stop_signal
from review.app import create_app
from review.queue import ReviewQueue
from review.security import AccessPolicy, page_urls
from review.store import open_store


def os_user() -> str:
    """The user running the server (USER/LOGNAME, else the password database, else the uid)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid-{os.getuid()}"


def server_reviewer(explicit: str | None, source: str, session: Any | None = None) -> str:
    """Who the labels are recorded as: --reviewer, else the AWS principal whose credentials write an s3://
    source's labels (STS GetCallerIdentity, which needs no permission), else the OS user."""
    if explicit:
        return explicit
    if is_s3_uri(source) and session is not None:
        return str(session.client("sts").get_caller_identity()["Arn"])
    return os_user()


def start_review(source: str, class_names: Sequence[str], *, host: str = "127.0.0.1", port: int = 0,
                 session: Any | None = None, policy: AccessPolicy | None = None,
                 reviewer: str | None = None) -> tuple[BackgroundServer, ReviewQueue]:
    """The page and API on a background server; the policy (refused off loopback without a token) and the
    source are checked before anything listens."""
    policy = policy or AccessPolicy.for_bind(host)
    store = open_store(source, session)
    queue = ReviewQueue(store, class_names, identity=server_reviewer(reviewer, source, session))
    return BackgroundServer(create_app(queue, policy), host=host, port=port, name="review").start(), queue


def serve(source: str, class_names: Sequence[str], *, host: str, port: int, session: Any | None = None,
          token: bool = False, allowed_hosts: Sequence[str] = (), reviewer: str | None = None,
          announce: Callable[[str], None] = print) -> None:
    policy = AccessPolicy.for_bind(host, token=token, allowed_hosts=allowed_hosts)
    server, queue = start_review(source, class_names, host=host, port=port, session=session, policy=policy,
                                 reviewer=reviewer)
    view = queue.view()
    first, *others = page_urls(host, server.port, policy)
    also = f" (also {', '.join(others)})" if others else ""
    try:
        wait_for_stop_signal(lambda: announce(
            f"review page: {first}{also}  ({view.labelled} labelled, {len(view.items)} left "
            f"in {queue.store.description}; classes {', '.join(queue.class_names)}; labels recorded as "
            f"{queue.identity}); Ctrl-C stops"))
    finally:
        server.stop()
