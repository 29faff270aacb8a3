"""The review server refuses what a browser attack sends (review/security.py), over real HTTP: the Host
allowlist, JSON-only same-origin writes, the token off loopback, and the reviewer taken from the server."""

from __future__ import annotations

import getpass
import http.client
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from review.security import AccessPolicy, RemoteAccessError, page_urls
from review.server import start_review
from testkit.review import CLASSES, queued_images, write_review_folder
from tests.support import HANG_GUARD_S

LABEL = "/api/items/exec-000-00000/label"


def send(port: int, method: str, path: str, body: bytes | None = None, **headers: str):
    """One raw request to 127.0.0.1:port with exactly these headers (Host included when given)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_S)
    try:
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        connection.putrequest(method, path, skip_host="Host" in named, skip_accept_encoding=True)
        for name, value in named.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        raw = response.read()
        answer = {name.lower(): value for name, value in response.getheaders()}
        parsed = json.loads(raw) if answer.get("content-type", "").startswith("application/json") and raw else raw
        return response.status, parsed, answer
    finally:
        connection.close()


def label_body(label: str = "bicycle", **extra: str) -> bytes:
    return json.dumps({"label": label, **extra}).encode()


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_review_folder(tmp_path / "bucket", queued_images(3))


@pytest.fixture
def server(folder):
    running, _ = start_review(str(folder), CLASSES, reviewer="ann")
    yield running
    running.stop()


def labels_in(folder: Path) -> dict[str, dict]:
    """The labels written, by the item they were given on (a label's file is named by its image's content hash)."""
    lines = [json.loads(path.read_text()) for path in sorted((folder / "labels").glob("*.jsonl"))]
    return {line["review"]["id"]: line for line in lines}


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          None])
def test_a_write_that_is_not_json_is_refused_and_writes_nothing(server, folder, content_type):
    # what a cross-site form or fetch(..., {mode: "no-cors"}) can send without a preflight
    headers = {"Content-Type": content_type} if content_type else {}
    status, body, _ = send(server.port, "POST", LABEL, label_body(), **headers)
    assert (status, body["error"]) == (415, "UnsupportedMediaTypeError")
    assert body["message"].startswith("POST needs Content-Type: application/json")
    assert labels_in(folder) == {}


def test_an_undo_that_is_not_json_is_refused(server, folder):
    own = {"Content-Type": "application/json"}
    assert send(server.port, "POST", LABEL, label_body(reviewer="s1"), **own)[0] == 201
    assert send(server.port, "DELETE", LABEL + "?reviewer=s1")[0] == 415
    assert list(labels_in(folder)) == ["exec-000-00000"]
    assert send(server.port, "DELETE", LABEL + "?reviewer=s1", **own)[0] == 200
    assert labels_in(folder) == {}


@pytest.mark.parametrize("origin_headers", [
    {"Origin": "http://127.0.0.1:1"},  # another local port: same-site, not same-origin
    {"Origin": "http://evil.example"},
    {"Origin": "null"},  # sandboxed frames, file:// pages
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site"},
])
def test_a_json_write_from_another_origin_is_refused(server, folder, origin_headers):
    status, body, _ = send(server.port, "POST", LABEL, label_body(), Content_Type="application/json",
                           **origin_headers)
    assert (status, body["error"]) == (403, "CrossOriginRequestError")
    assert labels_in(folder) == {}


def test_the_pages_own_json_write_is_let_through(server, folder):
    own = f"127.0.0.1:{server.port}"
    status, _, headers = send(server.port, "POST", LABEL, label_body(), Content_Type="application/json",
                              Origin=f"http://{own}", Sec_Fetch_Site="same-origin")
    assert status == 201 and list(labels_in(folder)) == ["exec-000-00000"]
    assert (headers["x-frame-options"], headers["x-content-type-options"]) == ("DENY", "nosniff")


@pytest.mark.parametrize("host", ["rebind.example:{port}", "rebind.example", "127.0.0.1:1", "10.0.0.1:{port}",
                                  "", "localhost:{port}.evil.example"])
def test_a_request_for_a_host_the_server_does_not_serve_is_403(server, folder, host):
    # DNS rebinding: the attacker's name, now resolving to 127.0.0.1, is still what the browser sends in Host
    named = host.format(port=server.port)
    for method, path, body in (("GET", "/", None), ("GET", "/api/queue", None),
                               ("GET", "/api/items/exec-000-00000/image", None), ("POST", LABEL, label_body())):
        status, answer, _ = send(server.port, method, path, body, Host=named, Content_Type="application/json")
        assert (status, answer["error"]) == (403, "HostNotAllowedError"), (method, path)
    assert labels_in(folder) == {}


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "127.8.9.10:{port}",
                                  "[::1]:{port}"])
def test_loopback_names_with_the_servers_port_are_served(server, host):
    status, body, _ = send(server.port, "GET", "/api/queue", Host=host.format(port=server.port))
    assert status == 200 and body["left"] == 3


def test_names_given_with_allowed_host_are_served_and_no_others(folder):
    policy = AccessPolicy.for_bind("127.0.0.1", allowed_hosts=["Reviews.Internal"])
    running, _ = start_review(str(folder), CLASSES, policy=policy)
    try:
        assert send(running.port, "GET", "/api/queue", Host=f"reviews.internal:{running.port}")[0] == 200
        assert send(running.port, "GET", "/api/queue", Host=f"other.internal:{running.port}")[0] == 403
    finally:
        running.stop()


def test_cross_origin_reads_of_the_api_are_refused_and_navigation_to_the_page_is_not(server):
    assert send(server.port, "GET", "/api/queue", Sec_Fetch_Site="cross-site")[0] == 403
    assert send(server.port, "GET", "/api/items/exec-000-00000/image", Sec_Fetch_Site="same-site")[0] == 403
    assert send(server.port, "GET", "/api/queue", Sec_Fetch_Site="same-origin")[0] == 200
    assert send(server.port, "GET", "/", Sec_Fetch_Site="cross-site")[0] == 200  # a link to the page is fine


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_serving_off_loopback_without_a_token_is_refused_at_start(folder, host):
    with pytest.raises(RemoteAccessError, match=rf"--host {host} serves the review page to the network: add --token"):
        start_review(str(folder), CLASSES, host=host)


def test_the_command_refuses_host_0_0_0_0_without_token(folder):
    done = subprocess.run([sys.executable, "-m", "review", "serve", "--source", str(folder), "--host", "0.0.0.0",
                           "--port", "0"], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("RemoteAccessError: --host 0.0.0.0 serves the review page to the network: "
                                          "add --token")


@pytest.fixture
def token_server(folder):
    policy = AccessPolicy.for_bind("127.0.0.1", token=True)
    running, _ = start_review(str(folder), CLASSES, policy=policy, reviewer="ann")
    yield running, policy.token
    running.stop()


def test_with_a_token_every_route_needs_it(token_server, folder):
    running, token = token_server
    for method, path, body in (("GET", "/", None), ("GET", "/api/queue", None), ("POST", LABEL, label_body())):
        status, answer, _ = send(running.port, method, path, body, Content_Type="application/json")
        assert (status, answer["error"]) == (401, "TokenRequiredError"), path
        status, _, _ = send(running.port, method, path, body, Content_Type="application/json",
                            Authorization=f"Bearer {token[:-1]}x")
        assert status == 401
    assert send(running.port, "GET", f"/?token={token}x")[0] == 401
    assert labels_in(folder) == {}
    status, _, _ = send(running.port, "POST", LABEL, label_body(), Content_Type="application/json",
                        Authorization=f"Bearer {token}")
    assert status == 201 and list(labels_in(folder)) == ["exec-000-00000"]


def test_the_token_in_the_url_becomes_an_httponly_cookie_and_leaves_the_address_bar(token_server):
    running, token = token_server
    status, _, headers = send(running.port, "GET", f"/?token={token}")
    assert (status, headers["location"]) == (303, "/")
    name = f"scones-review-token-{running.port}"
    assert headers["set-cookie"] == f"{name}={token}; Path=/; HttpOnly; SameSite=Strict"
    status, page, _ = send(running.port, "GET", "/", Cookie=f"other=1; {name}={token}")
    assert status == 200 and b"Bicycle or motorcycle?" in page
    assert send(running.port, "GET", "/api/queue", Cookie=f"{name}={token}")[0] == 200
    # the cookie is the login, not a pass for writes: a cross-site form still carries it and is still refused
    status, body, _ = send(running.port, "POST", LABEL, label_body(), Cookie=f"{name}={token}",
                           Content_Type="text/plain", Origin="http://127.0.0.1:1")
    assert (status, body["error"]) == (415, "UnsupportedMediaTypeError")


def test_the_command_serves_the_network_with_a_token_it_prints_in_the_page_url(folder):
    process = subprocess.Popen([sys.executable, "-m", "review", "serve", "--source", str(folder), "--host", "0.0.0.0",
                                "--port", "0", "--token", "--reviewer", "ann"],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # the server announces itself once it listens
        assert line.startswith("review page: http://"), line
        url = line.split()[2]
        port, token = int(url.split(":")[2].split("/")[0]), url.split("?token=")[1]
        assert len(token) >= 40
        assert send(port, "GET", "/api/queue")[0] == 401
        status, _, _ = send(port, "POST", LABEL, label_body(reviewer="page-1"), Content_Type="application/json",
                            Authorization=f"Bearer {token}")
        assert status == 201
        assert labels_in(folder)["exec-000-00000"]["review"]["reviewer"] == "ann"
    finally:
        process.terminate()
        process.wait(timeout=HANG_GUARD_S)


# Who labelled: the server's side, not the request body ----------------------------------------------------

def test_the_label_records_the_servers_reviewer_and_the_pages_session(server, folder):
    status, _, _ = send(server.port, "POST", LABEL, label_body(reviewer="mallory"), Content_Type="application/json")
    assert status == 201
    review = labels_in(folder)["exec-000-00000"]["review"]
    assert (review["reviewer"], review["session"]) == ("ann", "mallory")


def test_without_reviewer_the_os_user_is_recorded(folder):
    running, _ = start_review(str(folder), CLASSES)
    try:
        assert send(running.port, "POST", LABEL, label_body(), Content_Type="application/json")[0] == 201
    finally:
        running.stop()
    assert labels_in(folder)["exec-000-00000"]["review"]["reviewer"] == getpass.getuser()


def test_an_s3_source_records_the_aws_principal():
    import boto3
    from moto import mock_aws

    from testkit.review import put_review_records

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        s3 = session.client("s3")
        s3.create_bucket(Bucket="review-bucket")
        put_review_records(s3, "review-bucket", queued_images(1, bucket="review-bucket"))
        running, queue = start_review("s3://review-bucket", CLASSES, session=session)
        try:
            status, _, _ = send(running.port, "POST", LABEL, label_body(reviewer="x"), Content_Type="application/json")
            assert status == 201
        finally:
            running.stop()
        arn = session.client("sts").get_caller_identity()["Arn"]
        key = f"labels/{queued_images(1, bucket='review-bucket')[0].content_sha256}.jsonl"  # a label is the image's
        line = json.loads(s3.get_object(Bucket="review-bucket", Key=key)["Body"].read())
    assert arn.startswith("arn:aws:") and queue.identity == arn
    assert line["review"]["reviewer"] == arn


def test_only_the_labelling_reviewer_can_undo(folder, server):
    own = {"Content-Type": "application/json"}
    assert send(server.port, "POST", LABEL, label_body(reviewer="tab-1"), **own)[0] == 201
    other, _ = start_review(str(folder), CLASSES, reviewer="bob")  # another reviewer's server on the same folder
    try:
        status, body, _ = send(other.port, "DELETE", LABEL + "?reviewer=tab-1", **own)  # even naming ann's session
        assert (status, body["error"]) == (409, "NotYourLabelError")
    finally:
        other.stop()
    assert send(server.port, "DELETE", LABEL + "?reviewer=tab-2", **own)[0] == 409  # ann, another page
    assert "exec-000-00000" in labels_in(folder)
    assert send(server.port, "DELETE", LABEL + "?reviewer=tab-1", **own)[0] == 200
    assert labels_in(folder) == {}


# Off loopback, with the token: reachable by address, by any port of an allowed name, and through an https proxy ----

@pytest.fixture
def network_server(folder):
    """Bound to every address with --token and --allowed-host reviews.internal (reached here through 127.0.0.1 with
    the Host a browser on another machine, or a reverse proxy, would send)."""
    policy = AccessPolicy.for_bind("0.0.0.0", token=True, allowed_hosts=["reviews.internal"])
    running, _ = start_review(str(folder), CLASSES, host="0.0.0.0", policy=policy, reviewer="ann")
    yield running, {"Authorization": f"Bearer {policy.token}"}
    running.stop()


@pytest.mark.parametrize("host", ["192.0.2.10:{port}", "192.0.2.10:8443", "192.0.2.10", "[2001:db8::7]:{port}",
                                  "reviews.internal:{port}", "reviews.internal", "reviews.internal:8443",
                                  "REVIEWS.INTERNAL:443"])
def test_with_a_token_ip_addresses_and_allowed_names_on_any_port_are_served(network_server, host):
    running, token = network_server
    status, body, _ = send(running.port, "GET", "/api/queue", Host=host.format(port=running.port), **token)
    assert status == 200 and body["left"] == 3


@pytest.mark.parametrize("host", ["rebind.example:{port}", "127.0.0.1:1", "localhost:8443", "[::1]:1",
                                  "localhost:{port}.evil.example"])
def test_with_a_token_other_names_and_loopback_on_another_port_are_still_403(network_server, host):
    running, token = network_server
    status, body, _ = send(running.port, "GET", "/api/queue", Host=host.format(port=running.port), **token)
    assert (status, body["error"]) == (403, "HostNotAllowedError")


def test_without_a_token_an_allowed_name_still_needs_the_servers_port(folder):
    policy = AccessPolicy.for_bind("127.0.0.1", allowed_hosts=["reviews.internal"])
    running, _ = start_review(str(folder), CLASSES, policy=policy)
    try:
        assert send(running.port, "GET", "/api/queue", Host="reviews.internal:8443")[0] == 403
        assert send(running.port, "GET", "/api/queue", Host=f"192.0.2.10:{running.port}")[0] == 403
    finally:
        running.stop()


def test_with_a_token_a_write_from_the_https_origin_of_an_allowed_name_is_let_through(network_server, folder):
    """A reverse proxy terminating TLS: the page's origin is https://reviews.internal, whatever Host reaches us."""
    running, token = network_server
    for host, origin in ((f"192.0.2.10:{running.port}", "https://evil.example"),
                         (f"192.0.2.10:{running.port}", "https://192.0.2.99"),
                         ("reviews.internal", "http://127.0.0.1:1"),
                         (f"127.0.0.1:{running.port}", "null")):
        status, body, _ = send(running.port, "POST", LABEL, label_body(), Host=host, Origin=origin,
                               Content_Type="application/json", Sec_Fetch_Site="same-origin", **token)
        assert (status, body["error"]) == (403, "CrossOriginRequestError"), (host, origin)
    assert labels_in(folder) == {}
    status, _, _ = send(running.port, "POST", LABEL, label_body(), Host=f"127.0.0.1:{running.port}",
                        Origin="https://reviews.internal", Content_Type="application/json",
                        Sec_Fetch_Site="same-origin", **token)
    assert status == 201
    status, _, _ = send(running.port, "POST", "/api/items/exec-000-00001/label", label_body(), Host="192.0.2.10",
                        Origin="https://192.0.2.10", Content_Type="application/json", **token)
    assert status == 201  # the https origin of the very address the browser asked for
    assert sorted(labels_in(folder)) == ["exec-000-00000", "exec-000-00001"]


def test_a_loopback_server_with_an_allowed_name_refuses_its_https_origin_without_a_token(folder):
    policy = AccessPolicy.for_bind("127.0.0.1", allowed_hosts=["reviews.internal"])
    running, _ = start_review(str(folder), CLASSES, policy=policy)
    try:
        status, body, _ = send(running.port, "POST", LABEL, label_body(), Host=f"reviews.internal:{running.port}",
                               Origin="https://reviews.internal", Content_Type="application/json")
        assert (status, body["error"]) == (403, "CrossOriginRequestError")
    finally:
        running.stop()
    assert labels_in(folder) == {}


def test_the_printed_urls_lead_with_an_address_of_the_machine_then_its_name():
    policy = AccessPolicy.for_bind("0.0.0.0", token=True)
    urls = page_urls("0.0.0.0", 8090, policy, addresses=["192.0.2.10", "2001:db8::7"])
    assert urls == [f"http://192.0.2.10:8090/?token={policy.token}", f"http://[2001:db8::7]:8090/?token={policy.token}",
                    f"http://{socket.gethostname()}:8090/?token={policy.token}"]
    assert page_urls("127.0.0.1", 8090, AccessPolicy.for_bind("127.0.0.1")) == ["http://127.0.0.1:8090/"]
    assert page_urls("192.0.2.10", 8090, policy) == [f"http://192.0.2.10:8090/?token={policy.token}"]
