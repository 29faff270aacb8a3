"""classify-image against endpoints that fail at the transport level: real sockets on 127.0.0.1.

Each fault must come out as EndpointUnavailableError (the state machine retries it by name), whether it
strikes before the answer's headers or while its body is read, and within the client's read timeout.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from functions.classify_image import app
from tests.support import HANG_GUARD_S

READ_TIMEOUT = 0.5
ANSWER = b"[0.9, 0.1]"


def read_request(connection: socket.socket) -> None:
    """Read one HTTP request (headers and Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += connection.recv(65536)


def headers(length: int) -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            "x-Amzn-Invoked-Production-Variant: AllTraffic\r\n\r\n").encode()


def reset(connection: socket.socket, released: threading.Event) -> None:
    read_request(connection)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST


def half_body(connection: socket.socket, released: threading.Event) -> None:
    read_request(connection)
    connection.sendall(headers(len(ANSWER)) + ANSWER[:4])


def stall_before_answer(connection: socket.socket, released: threading.Event) -> None:
    read_request(connection)
    released.wait(HANG_GUARD_S)  # until the client has given up: its timeout, not a race with ours


def stall_mid_body(connection: socket.socket, released: threading.Event) -> None:
    read_request(connection)
    connection.sendall(headers(len(ANSWER)) + ANSWER[:4])
    released.wait(HANG_GUARD_S)


def answer(connection: socket.socket, released: threading.Event) -> None:
    read_request(connection)
    connection.sendall(headers(len(ANSWER)) + ANSWER)


@dataclass
class FaultServer:
    url: str
    connections: list[int] = field(default_factory=list)  # one entry per connection accepted: attempts made


@contextmanager
def fault_server(behaviour: Callable[[socket.socket, threading.Event], None]) -> Iterator[FaultServer]:
    """The first connection gets `behaviour`; later ones (a retry) are counted and closed."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    released = threading.Event()
    server = FaultServer(f"http://127.0.0.1:{listener.getsockname()[1]}")

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            server.connections.append(len(server.connections) + 1)  # counted as it connects, held or not
            if len(server.connections) == 1:
                threading.Thread(target=handle, args=(connection,), daemon=True).start()
            else:
                connection.close()

    def handle(connection: socket.socket) -> None:
        with connection:
            behaviour(connection, released)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        released.set()
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(HANG_GUARD_S)


def client(url: str, read_timeout: float = 30.0):
    """classify-image's client with its timeouts shortened for the stalls (elsewhere long: a busy machine answers
    late, never wrong)."""
    return app.make_runtime_client(read_timeout=read_timeout, connect_timeout=read_timeout, endpoint_url=url,
                                   region_name="us-east-1")


@pytest.mark.parametrize("behaviour,botocore_name", [
    (reset, "ConnectionClosedError"),
    (half_body, "ResponseStreamingError"),
    (stall_before_answer, "ReadTimeoutError"),
    (stall_mid_body, "ReadTimeoutError"),
])
def test_transport_faults_are_retryable_endpoint_unavailable(behaviour, botocore_name):
    stalls = behaviour in (stall_before_answer, stall_mid_body)
    with fault_server(behaviour) as server:
        with pytest.raises(app.EndpointUnavailableError, match=f"scones: {botocore_name}") as raised:
            app.invoke_endpoint(client(server.url, READ_TIMEOUT if stalls else 30.0), "scones", b"png")
    assert type(raised.value.__cause__).__name__ == botocore_name  # a stall: the client's read timeout ended it
    assert server.connections == [1]  # one attempt: the state machine retries, not the client


def test_a_refused_connection_is_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, not listening: connection refused
        with pytest.raises(app.EndpointUnavailableError, match="EndpointConnectionError"):
            app.invoke_endpoint(client(url), "scones", b"png")


def test_a_whole_answer_over_the_same_socket_is_read():
    with fault_server(answer) as server:
        assert json.loads(app.invoke_endpoint(client(server.url), "scones", b"png")) == [0.9, 0.1]
