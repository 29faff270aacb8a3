"""The download path against a real HTTP server on loopback: retries, truncation, caching, mirrors."""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from data_prep.dataset import extract

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class ScriptedHTTP:
    """Serves scripted (status, body) replies in order, then the full payload; counts the requests."""

    def __init__(self) -> None:
        self.script: deque[tuple[int, bytes]] = deque()
        self.requests = 0
        parent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                parent.requests += 1
                status, body = parent.script.popleft() if parent.script else (200, PAYLOAD)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/cifar-100-python.tar.gz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def http():
    server = ScriptedHTTP()
    yield server
    server.server.shutdown()


def test_a_500_is_retried_then_the_file_is_verified(http, tmp_path):
    http.script.append((500, b"oops"))
    destination = tmp_path / "cifar.tar.gz"

    assert extract.download([http.url], destination, PAYLOAD_MD5, backoff=0.01, log=lambda m: None) is True

    assert http.requests == 2
    assert destination.read_bytes() == PAYLOAD
    assert not destination.with_name("cifar.tar.gz.part").exists()


def test_a_truncated_body_is_a_checksum_error_and_leaves_no_file(http, tmp_path):
    http.script.append((200, PAYLOAD[:1000]))
    destination = tmp_path / "cifar.tar.gz"
    messages: list[str] = []

    with pytest.raises(extract.DownloadError, match="MD5 .*, expected " + PAYLOAD_MD5):
        extract.download([http.url], destination, PAYLOAD_MD5, backoff=0.01, log=messages.append)

    assert list(tmp_path.iterdir()) == []
    assert messages == []  # the one URL's failure is the error itself, not said twice


def test_a_failed_mirror_is_noted_once_and_the_last_failure_is_the_error(http, tmp_path):
    http.script.extend([(404, b"moved"), (404, b"moved")])
    messages: list[str] = []
    with pytest.raises(extract.DownloadError) as raised:
        extract.download([http.url, http.url], tmp_path / "c.tar.gz", PAYLOAD_MD5, retries=0, log=messages.append)
    assert len(messages) == 1 and messages[0].endswith(f"{http.url}: HTTP 404; trying the next URL")
    assert str(raised.value) == (f"could not download c.tar.gz from any of 2 URLs (last: {http.url}: HTTP 404): "
                                 f"with a local copy, pass --source /path/to/c.tar.gz (or put it at "
                                 f"{tmp_path / 'c.tar.gz'})")
    assert raised.value.exit_status == 3  # the network or the mirrors: the environment


def test_the_next_mirror_is_tried_when_one_fails(http, tmp_path):
    http.script.extend([(404, b"moved")])
    destination = tmp_path / "cifar.tar.gz"
    assert extract.download([http.url, http.url], destination, PAYLOAD_MD5, backoff=0.01, log=lambda m: None)
    assert http.requests == 2


def test_a_valid_cached_file_downloads_nothing(http, tmp_path):
    destination = tmp_path / "cifar.tar.gz"
    extract.download([http.url], destination, PAYLOAD_MD5, log=lambda m: None)
    assert extract.download([http.url], destination, PAYLOAD_MD5, log=lambda m: None) is False
    assert http.requests == 1


def test_a_corrupt_cached_file_is_reported_deleted_and_fetched_again(http, tmp_path):
    destination = tmp_path / "cifar.tar.gz"
    destination.write_bytes(b"half a download")
    messages: list[str] = []
    assert extract.download([http.url], destination, PAYLOAD_MD5, log=messages.append) is True
    assert destination.read_bytes() == PAYLOAD
    assert messages == [f"cached file is not valid, deleting it: {destination}: MD5 "
                        f"{hashlib.md5(b'half a download').hexdigest()}, expected {PAYLOAD_MD5}"]


def test_file_urls_are_copied_with_progress(tmp_path):
    source = tmp_path / "local copy.tar.gz"
    source.write_bytes(PAYLOAD)
    seen: list[tuple[int, int | None]] = []
    destination = tmp_path / "cache" / "cifar.tar.gz"
    extract.download([source.as_uri()], destination, PAYLOAD_MD5, progress=lambda d, t: seen.append((d, t)))
    assert destination.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_no_network_gives_one_message_that_says_how_to_use_a_local_copy(tmp_path):
    unreachable = "http://127.0.0.1:9/cifar-100-python.tar.gz"  # discard port: nothing listens
    with pytest.raises(extract.DownloadError) as raised:
        extract.download([unreachable], tmp_path / "c.tar.gz", PAYLOAD_MD5, retries=1, backoff=0.01,
                         log=lambda m: None)
    assert str(raised.value) == (f"could not download c.tar.gz from its URL (last: {unreachable}: could not "
                                 f"connect): with a local copy, pass --source /path/to/c.tar.gz (or put it at "
                                 f"{tmp_path / 'c.tar.gz'})")
    assert "\n" not in str(raised.value)
