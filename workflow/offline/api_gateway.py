"""The template's REST API offline: API Gateway's request path for an AWS integration to Step Functions.

For each route of the AWS::Serverless::Api's OpenAPI body, as API Gateway would:

1. authorisation: with the AWS_IAM authoriser, a request without SigV4 (an `Authorization:
   AWS4-HMAC-SHA256 Credential=.../execute-api/aws4_request, SignedHeaders=..., Signature=...` header
   and a date, or the X-Amz-* query parameters) is refused with 403 and API Gateway's messages. The
   signature itself cannot be checked offline (there is no IAM): any well-formed one is let in;
2. size: a body over 10 MB is refused (413); then the stage's throttling (MethodSettings ThrottlingRateLimit and
   ThrottlingBurstLimit, a token bucket: `burst` requests at once, refilled at `rate` per second): past it, 429
   "Too Many Requests" and no integration call;
3. the request mapping template chosen by Content-Type (application/json when none is sent; none for
   the type and `passthroughBehavior: never` gives 415); a body whose type is in BinaryMediaTypes is
   base64-encoded first (`contentHandling: CONVERT_TO_TEXT`);
4. the integration: `states:action/StartSyncExecution` runs the EXPRESS machine in this process
   (sync_execution.py), within the integration timeout (29 s: 504 after it);
5. the integration response whose selectionPattern matches the service's status code (else
   `default`), its response template, and `$context.responseOverride.status`.

Nothing in the templates is copied: change the mapping templates in template.yaml and this changes.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from common.settings import OFFLINE_ACCOUNT, OFFLINE_REGION
from common.template import ApiSpec
from workflow.offline.sync_execution import ServiceError, start_sync_execution
from workflow.offline.vtl import BodyNotJsonError, Input, render

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
SIGV4 = "AWS4-HMAC-SHA256"
_INTEGRATIONS = {"states:action/StartSyncExecution"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    integration: dict[str, Any]
    iam: bool


class TokenBucket:
    """API Gateway's throttling: at most `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens, self._updated = float(burst), clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def gateway_response(status: int, message: str, request_id: str) -> Response:
    """One of API Gateway's own responses (not the integration's): {"message": ...}."""
    return Response(json.dumps({"message": message}), status_code=status, media_type="application/json",
                    headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": _error_type(status)})


def _error_type(status: int) -> str:
    return {403: "MissingAuthenticationTokenException", 413: "RequestTooLarge", 415: "UnsupportedMediaType",
            429: "TooManyRequestsException", 504: "IntegrationTimeout"}.get(status, "InternalServerErrorException")


def sigv4_problem(request: Request) -> str | None:
    """Why API Gateway would refuse this request's SigV4 form before checking the signature, or None."""
    query = request.query_params
    if "X-Amz-Signature" in query:
        credential = query.get("X-Amz-Credential", "")
        return None if credential else "Authorization query string requires 'X-Amz-Credential' parameter."
    header = request.headers.get("authorization")
    if not header:
        return "Missing Authentication Token"
    if not header.startswith(SIGV4 + " "):
        return f"Authorization header requires '{SIGV4}' as the algorithm. Authorization={header[:40]}"
    fields = dict(part.strip().split("=", 1) for part in header[len(SIGV4):].split(",") if "=" in part)
    missing = [f"Authorization header requires '{name}' parameter." for name in ("Credential", "Signature",
                                                                                 "SignedHeaders")
               if not fields.get(name)]
    if not (request.headers.get("x-amz-date") or request.headers.get("date")):
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if missing:
        return " ".join(missing)
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[3] != "execute-api" or scope[4] != "aws4_request":
        return "Credential should be scoped to correct service: 'execute-api'. "
    return None


class LocalRestApi:
    """A Starlette app serving one AWS::Serverless::Api's routes under /{stage}."""

    def __init__(self, spec: ApiSpec, *, account: str = OFFLINE_ACCOUNT, region: str = OFFLINE_REGION,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.throttle = TokenBucket(*spec.throttle, clock=clock) if spec.throttle else None
        self.account, self.region = account, region
        self.api_id = spec.logical_id.lower()[:10]
        self.operations: dict[tuple[str, str], Operation] = {}
        for path, methods in spec.definition.get("paths", {}).items():
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration")
                if integration is None:
                    continue
                iam = spec.default_authorizer == "AWS_IAM" or any("AWS_IAM" in s for s in operation.get("security", []))
                self.operations[(method.upper(), path)] = Operation(method.upper(), path, integration, iam)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle,
                                       methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])])

    def context(self, request: Request, request_id: str, operation: Operation) -> dict[str, Any]:
        now = datetime.now(UTC)
        credential = request.headers.get("authorization", "").split("Credential=", 1)[-1].split("/", 1)[0]
        return {
            "requestId": request_id,
            "extendedRequestId": request_id,
            "accountId": self.account,
            "apiId": self.api_id,
            "stage": self.spec.stage,
            "httpMethod": operation.method,
            "resourcePath": operation.path,
            "path": f"/{self.spec.stage}{operation.path}",
            "protocol": "HTTP/1.1",
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "identity": {"sourceIp": request.client.host if request.client else "127.0.0.1",
                         "accessKey": credential if operation.iam else None,
                         "caller": credential if operation.iam else None,
                         "accountId": self.account if operation.iam else None,
                         "userArn": f"arn:aws:iam::{self.account}:user/offline" if operation.iam else None,
                         "userAgent": request.headers.get("user-agent", "")},
        }

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        stage_prefix = f"{self.spec.stage}/"
        path = request.path_params["path"]
        operation = self.operations.get((request.method, "/" + path[len(stage_prefix):])) \
            if path.startswith(stage_prefix) else None
        if operation is None:  # API Gateway answers an unknown route like a missing token
            return gateway_response(403, "Missing Authentication Token", request_id)
        if operation.iam:
            problem = sigv4_problem(request)
            if problem is not None:
                return gateway_response(403, problem, request_id)
        raw = await request.body()
        if len(raw) > MAX_PAYLOAD_BYTES:
            return gateway_response(413, "Request Too Long", request_id)
        if self.throttle is not None and not self.throttle.take():
            return gateway_response(429, "Too Many Requests", request_id)
        integration = operation.integration
        content_type = request.headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
        templates = integration.get("requestTemplates", {})
        template = templates.get(content_type)
        if template is None and integration.get("passthroughBehavior", "when_no_match") != "when_no_match":
            return gateway_response(415, "Unsupported Media Type", request_id)
        binary = any(fnmatch.fnmatch(content_type, pattern) for pattern in self.spec.binary_media_types)
        if binary and integration.get("contentHandling") == "CONVERT_TO_TEXT":
            body = base64.b64encode(raw).decode("ascii")
        else:
            body = raw.decode("utf-8", errors="replace")
        params = {"path": {}, "querystring": dict(request.query_params), "header": dict(request.headers)}
        context = self.context(request, request_id, operation)
        try:
            integration_request = render(template, Input(body, params), context).body if template else body
        except BodyNotJsonError as error:
            return gateway_response(400, str(error), request_id)
        timeout = int(integration.get("timeoutInMillis", 29000)) / 1000
        try:
            status, service_body = await asyncio.wait_for(
                run_in_threadpool(self.call_integration, integration, integration_request), timeout)
        except TimeoutError:
            return gateway_response(504, "Endpoint request timed out", request_id)
        return self.integration_response(integration, status, service_body, context)

    def call_integration(self, integration: dict[str, Any], request_body: str) -> tuple[int, str]:
        """(status, body) of the AWS service call the integration makes."""
        action = re.sub(r"^arn:[^:]+:apigateway:[^:]*:", "", integration.get("uri", ""))
        if integration.get("type") != "aws" or action not in _INTEGRATIONS:
            return 500, json.dumps({"__type": "InternalFailure", "message": f"integration {action!r} not offline"})
        try:
            request = json.loads(request_body)
        except json.JSONDecodeError as error:
            return 400, json.dumps({"__type": "SerializationException", "message": str(error)})
        try:
            response = start_sync_execution(str(request.get("stateMachineArn", "")),
                                            str(request.get("input", "{}")), request.get("name"),
                                            account=self.account, region=self.region)
        except ServiceError as error:
            return error.status, json.dumps(error.body())
        return 200, json.dumps(response)

    def integration_response(self, integration: dict[str, Any], status: int, service_body: str,
                             context: dict[str, Any]) -> Response:
        responses: dict[str, Any] = integration.get("responses", {})
        chosen = next((response for pattern, response in responses.items()
                       if pattern != "default" and re.fullmatch(pattern, str(status))), responses.get("default"))
        if chosen is None:
            return Response(service_body, status_code=status, media_type="application/json")
        template = chosen.get("responseTemplates", {}).get("application/json")
        rendered = render(template, Input(service_body), context) if template else None
        headers = {"x-amzn-RequestId": context["requestId"]}
        body = rendered.body if rendered else service_body
        code = (rendered.status_override if rendered else None) or int(chosen.get("statusCode", status))
        return Response(body, status_code=code, media_type="application/json",
                        headers={**headers, **(rendered.header_overrides if rendered else {})})
