"""A SigV4-signing client for the classification API, as awscurl would call it (tests and bench share it)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from common.settings import OFFLINE_REGION


def signed_headers(url: str, body: bytes, content_type: str, *, region: str = OFFLINE_REGION,
                   service: str = "execute-api") -> dict[str, str]:
    """Headers of a SigV4-signed POST (Authorization, X-Amz-Date, ...) with the offline fake credentials."""
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": content_type})
    SigV4Auth(Credentials("testing", "testing", "testing"), service, region).add_auth(request)
    return dict(request.headers.items())


@dataclass
class Answer:
    status: int
    body: Any  # parsed JSON
    headers: dict[str, str]  # names in lower case


class ApiClient:
    """One keep-alive connection to the API; `post` signs unless told not to."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.path = parts.path.rstrip("/")
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)

    def post(self, route: str, body: bytes | str | dict[str, Any], content_type: str = "application/json", *,
             signed: bool = True, headers: dict[str, str] | None = None) -> Answer:
        data = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) \
            else body
        sent = signed_headers(self.base_url + route, data, content_type) if signed else {"Content-Type": content_type}
        self.connection.request("POST", self.path + route, body=data, headers={**sent, **(headers or {})})
        response = self.connection.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError:
            parsed = raw.decode(errors="replace")
        return Answer(response.status, parsed, {name.lower(): value for name, value in response.getheaders()})

    def close(self) -> None:
        self.connection.close()
