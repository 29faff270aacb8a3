"""classify-image against endpoints that fail at the transport level: real sockets on 127.0.0.1.

Each fault must come out as EndpointUnavailableError (the state machine retries it by name), whether it
strikes before the answer's headers or while its body is read, and within the client's read timeout.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from functions.classify_image import app

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


def reset(connection: socket.socket) -> None:
    read_request(connection)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST


def half_body(connection: socket.socket) -> None:
    read_request(connection)
    connection.sendall(headers(len(ANSWER)) + ANSWER[:4])


def stall_before_answer(connection: socket.socket) -> None:
    read_request(connection)
    time.sleep(READ_TIMEOUT * 4)


def stall_mid_body(connection: socket.socket) -> None:
    read_request(connection)
    connection.sendall(headers(len(ANSWER)) + ANSWER[:4])
    time.sleep(READ_TIMEOUT * 4)


def answer(connection: socket.socket) -> None:
    read_request(connection)
    connection.sendall(headers(len(ANSWER)) + ANSWER)


@contextmanager
def fault_server(behaviour: Callable[[socket.socket], None]) -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(10)

    def serve_one() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            behaviour(connection)

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        thread.join(READ_TIMEOUT * 6)


def client(url: str):
    return app.make_runtime_client(read_timeout=READ_TIMEOUT, connect_timeout=READ_TIMEOUT, endpoint_url=url,
                                   region_name="us-east-1")


@pytest.mark.parametrize("behaviour,botocore_name", [
    (reset, "ConnectionClosedError"),
    (half_body, "ResponseStreamingError"),
    (stall_before_answer, "ReadTimeoutError"),
    (stall_mid_body, "ReadTimeoutError"),
])
def test_transport_faults_are_retryable_endpoint_unavailable(behaviour, botocore_name):
    with fault_server(behaviour) as url:
        started = time.monotonic()
        with pytest.raises(app.EndpointUnavailableError, match=f"scones: {botocore_name}") as raised:
            app.invoke_endpoint(client(url), "scones", b"png")
        elapsed = time.monotonic() - started
    assert type(raised.value.__cause__).__name__ == botocore_name
    assert elapsed < READ_TIMEOUT * 3  # bounded by the client's timeout, one attempt


def test_a_refused_connection_is_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, not listening: connection refused
        with pytest.raises(app.EndpointUnavailableError, match="EndpointConnectionError"):
            app.invoke_endpoint(client(url), "scones", b"png")


def test_a_whole_answer_over_the_same_socket_is_read():
    with fault_server(answer) as url:
        assert json.loads(app.invoke_endpoint(client(url), "scones", b"png")) == [0.9, 0.1]
