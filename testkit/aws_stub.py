"""An AWS endpoint on 127.0.0.1 that answers every request with one error, in the wire format of the caller's
protocol, so a command's real botocore path meets access denied, expired credentials or throttling offline.

Point a process at it with AWS_ENDPOINT_URL (every service then calls it). The protocol is told from the
request as botocore sends it: `X-Amz-Target` is the JSON protocol (Step Functions, SageMaker, Application Auto
Scaling), a form body with `Action=` the query protocol (CloudFormation, STS), anything else S3's REST-XML.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


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
FAULTS = {"denied": ACCESS_DENIED, "expired": EXPIRED_TOKEN, "throttled": THROTTLED}


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


def _handler(stub: AwsErrorStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = stub.fault
            target = self.headers.get("X-Amz-Target")
            action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
            if target:
                stub.requests.append(f"json:{target}")
                document = json.dumps({"__type": fault.json_code, "message": fault.message})
                self._send(fault.status, "application/x-amz-json-1.0", document.encode(),
                           {"x-amzn-ErrorType": fault.json_code})
            elif action == "GetCallerIdentity" and stub.allow_identity:
                stub.requests.append(f"query:{action}")
                self._send(200, "text/xml", CALLER_IDENTITY.encode())
            elif action:
                stub.requests.append(f"query:{action}")
                query_error = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.query_code}</Code>"
                               f"<Message>{fault.message}</Message></Error><RequestId>stub</RequestId></ErrorResponse>")
                self._send(fault.status, "text/xml", query_error.encode())
            else:
                stub.requests.append(f"s3:{self.command} {self.path}")
                s3_error = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{fault.s3_code}</Code>"
                            f"<Message>{fault.message}</Message><RequestId>stub</RequestId></Error>")
                self._send(fault.s3_status or fault.status, "application/xml", s3_error.encode())

        def _send(self, status: int, content_type: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

    return Handler


@contextmanager
def aws_error_stub(fault: AwsFault, *, allow_identity: bool = False) -> Iterator[AwsErrorStub]:
    """Serve `fault` to every request until the block ends; `stub.url` is the AWS_ENDPOINT_URL to use."""
    stub = AwsErrorStub(fault, allow_identity)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="aws-error-stub",
                              daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
