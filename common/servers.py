"""Run an ASGI app on uvicorn in a background thread, on a free loopback port."""

from __future__ import annotations

import errno
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from common.errors import EnvironmentProblem, InputError


class PortInUseError(InputError):
    """The port asked for is taken (or may not be used): named at once, before anything starts."""


class ServerStartError(EnvironmentProblem):
    """The server stopped, or did not start listening in time, after its socket was bound."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or PortInUseError naming the port (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is not "in use"
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(f"port {port} on {host} is in use: stop what listens there, or choose another "
                                 "port (0: any free port)") from error
        if error.errno == errno.EACCES:
            raise PortInUseError(f"port {port} on {host} may not be used by this user: choose a port above 1023 "
                                 "(0: any free port)") from error
        raise PortInUseError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    sock.set_inheritable(True)
    return sock


def check_port_free(host: str, port: int) -> None:
    """PortInUseError now, before a command loads a model or starts a service, when `port` is taken (0: nothing to
    check). The server binds again when it starts: this is so the user hears at once, not a reservation."""
    if port:
        bind(host, port).close()


class BackgroundServer:
    """A uvicorn server on 127.0.0.1, port chosen by the OS (never fixed), so runs never collide.

    The socket is bound before the server thread starts, so a port in use is a named error at once
    (uvicorn alone logs it from its thread and the caller waited out the start timeout). uvicorn's own
    logging configuration is left alone: its records reach whatever the command set up (the run's log).
    httptools and uvloop: uvloop took about 0.1 ms off the endpoint's keep-alive round trip
    (bench/endpoint.py, wrk p50 0.96 -> 0.85 ms).
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "server") -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
            http="httptools", loop="uvloop", timeout_keep_alive=30, log_config=None,
        )
        self.name, self.host, self.requested_port = name, host, port
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        sock = bind(self.host, self.requested_port)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name=self.name,
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                sock.close()
                raise ServerStartError(f"{self.name} on {self.host}:{sock.getsockname()[1]} stopped while starting")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"{self.name} did not start within {timeout} s")
            time.sleep(0.005)
        return self

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_stop_signal(ready: Callable[[], None] | None = None) -> None:
    """Block until SIGTERM or SIGINT (Ctrl-C): how a foreground server (`serve`, `review serve`) waits.

    Both signals only set an event, so the caller's `finally` stops its server and flushes what it holds; the
    previous handlers are back once it returns (a second Ctrl-C during the teardown interrupts as usual). `ready`
    (the caller's "serving on ...; Ctrl-C stops" lines) runs once the handlers are in place: a supervisor that
    sends SIGTERM as soon as it reads them gets a clean stop, never the default kill.
    """
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        if ready is not None:
            ready()
        stop.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
