"""An AWS endpoint on 127.0.0.1 that answers every request with one error, in the wire format of the caller's
protocol, so a command's real botocore path meets access denied, expired credentials or throttling offline; and
a proxy in front of a moto server that refuses only the calls a test picks (a GetObject denied mid-run).

Point a process at either with AWS_ENDPOINT_URL (every service then calls it). The protocol is told from the
request as botocore sends it: `X-Amz-Target` is the JSON protocol (Step Functions, SageMaker, Application Auto
Scaling), a form body with `Action=` the query protocol (CloudFormation, STS), anything else S3's REST-XML.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class AwsFault:
    """One fault, as each protocol names it (the codes AWS returns for it) and its HTTP status."""

    json_code: str
    query_code: str
    s3_code: str
    status: int
    message: str
    s3_status: int | None = None


ACCESS_DENIED = AwsFault("AccessDeniedException", "AccessDenied", "AccessDenied", 403,
                         "User: arn:aws:iam::123456789012:user/dev is not authorized to perform this action")
EXPIRED_TOKEN = AwsFault("ExpiredTokenException", "ExpiredToken", "ExpiredToken", 400,
                         "The security token included in the request is expired")
THROTTLED = AwsFault("ThrottlingException", "Throttling", "SlowDown", 400, "Rate exceeded", s3_status=503)
CLOSED = AwsFault("", "", "", 0, "the connection is closed before any answer")  # status 0: no answer at all
FAULTS = {"denied": ACCESS_DENIED, "expired": EXPIRED_TOKEN, "throttled": THROTTLED, "closed": CLOSED}


# STS GetCallerIdentity's answer, for a stub that lets the caller's identity through (`allow_identity`).
CALLER_IDENTITY = ('<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
                   "<Arn>arn:aws:iam::123456789012:user/dev</Arn><UserId>AIDAEXAMPLE</UserId>"
                   "<Account>123456789012</Account></GetCallerIdentityResult>"
                   "<ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></GetCallerIdentityResponse>")


@dataclass
class AwsErrorStub:
    fault: AwsFault
    allow_identity: bool = False  # answer GetCallerIdentity, so a command gets past its credentials check
    url: str = ""
    requests: list[str] = field(default_factory=list)  # "json:<target>", "query:<Action>", "s3:<METHOD> <path>"


def request_name(headers: Any, body: bytes, method: str, path: str) -> str:
    """"json:<target>", "query:<Action>" or "s3:<METHOD> <path>": which call a botocore request is."""
    target = headers.get("X-Amz-Target")
    if target:
        return f"json:{target}"
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    if action:
        return f"query:{action}"
    return f"s3:{method} {path}"


def fault_answer(name: str, fault: AwsFault) -> tuple[int, str, bytes, dict[str, str]]:
    """(status, content type, body, headers) of `fault` in the wire format of the call `name`."""
    if name.startswith("json:"):
        document = json.dumps({"__type": fault.json_code, "message": fault.message})
        return fault.status, "application/x-amz-json-1.0", document.encode(), {"x-amzn-ErrorType": fault.json_code}
    if name.startswith("query:"):
        query_error = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.query_code}</Code>"
                       f"<Message>{fault.message}</Message></Error><RequestId>stub</RequestId></ErrorResponse>")
        return fault.status, "text/xml", query_error.encode(), {}
    s3_error = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{fault.s3_code}</Code>"
                f"<Message>{fault.message}</Message><RequestId>stub</RequestId></Error>")
    return fault.s3_status or fault.status, "application/xml", s3_error.encode(), {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, content_type: str | None, payload: bytes, headers: dict[str, str]) -> None:
        if status == 0:  # CLOSED: hang up without answering
            self.close_connection = True
            return
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _handler(stub: AwsErrorStub) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        def _answer(self) -> None:
            name = request_name(self.headers, self._body(), self.command, self.path)
            stub.requests.append(name)
            if name == "query:GetCallerIdentity" and stub.allow_identity:
                self._send(200, "text/xml", CALLER_IDENTITY.encode(), {})
            else:
                self._send(*fault_answer(name, stub.fault))

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

    return Handler


@dataclass
class AwsFaultProxy:
    upstream: str
    fault: AwsFault
    refuse: Callable[[str], bool]  # given a request_name, whether to answer it with the fault
    replace: Callable[[str], bytes | None] = lambda name: None  # a body to answer 200 with instead of upstream's
    url: str = ""
    refused: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)


# Hop-by-hop and length headers the proxy sets itself.
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


def _proxy_handler(proxy: AwsFaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(_Handler):
        def _answer(self) -> None:
            body = self._body()
            name = request_name(self.headers, body, self.command, self.path)
            if proxy.refuse(name):
                proxy.refused.append(name)
                self._send(*fault_answer(name, proxy.fault))
                return
            replacement = proxy.replace(name)
            if replacement is not None:
                proxy.replaced.append(name)
                self._send(200, "application/json", replacement, {})
                return
            proxy.forwarded.append(name)
            connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=60)
            try:
                headers = {key: value for key, value in self.headers.items() if key.lower() not in _NOT_FORWARDED}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                passed = {key: value for key, value in response.getheaders() if key.lower() not in _NOT_FORWARDED}
            finally:
                connection.close()
            self._send(response.status, None, payload, passed)

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (botocore closing its pool at exit) is no error of the stub's; others are shown."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler], name: str) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def aws_fault_proxy(upstream: str, fault: AwsFault, refuse: Callable[[str], bool],
                    replace: Callable[[str], bytes | None] | None = None) -> Iterator[AwsFaultProxy]:
    """Forward every request to `upstream` (a moto server) but those `refuse` picks (by request_name), which get
    `fault`, and those `replace` gives a body for (answered 200 with it); `proxy.url` is the AWS_ENDPOINT_URL to
    use."""
    proxy = AwsFaultProxy(upstream, fault, refuse, replace or (lambda name: None))
    with _serving(_proxy_handler(proxy), "aws-fault-proxy") as url:
        proxy.url = url
        yield proxy


@contextmanager
def aws_error_stub(fault: AwsFault, *, allow_identity: bool = False) -> Iterator[AwsErrorStub]:
    """Serve `fault` to every request until the block ends; `stub.url` is the AWS_ENDPOINT_URL to use."""
    stub = AwsErrorStub(fault, allow_identity)
    with _serving(_handler(stub), "aws-error-stub") as url:
        stub.url = url
        yield stub
