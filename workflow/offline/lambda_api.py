"""A local Lambda service: the Invoke API over HTTP, running our handlers in this process.

Step Functions (moto's interpreter here, the real service on AWS) calls Lambda through
`POST /2015-03-31/functions/{name}/invocations`; pointing boto3 at this server with
AWS_ENDPOINT_URL_LAMBDA makes the real ASL run the real handlers. Each function is imported with
its own environment from template.yaml, as the Lambda service would start it, and answers with
Lambda's own shapes: a handler exception is HTTP 200 with `X-Amz-Function-Error: Unhandled` and an
`{"errorType", "errorMessage", ...}` body, so the state machine sees the exception's class name. Given
an `identity` (workflow.offline.iam), a function runs with its role's credentials, and every AWS call it makes
is held to its role's policies, as on AWS.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import unquote

import boto3
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.environ import patched_environ
from common.settings import OFFLINE_ACCOUNT, OFFLINE_REGION
from common.template import FunctionSpec
from workflow.offline.iam import Identity, acting_as
from workflow.offline.logs import LogRouter


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_ms: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error_payload(error: BaseException, request_id: str) -> dict[str, Any]:
    """The body the Python Lambda runtime returns for an unhandled exception (its frames, not ours)."""
    frames = error.__traceback__.tb_next if error.__traceback__ is not None else None
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(frames),
    }


class LocalFunction:
    """One function as one warm Lambda sandbox: initialised once with its own environment, and running
    one invocation at a time, as a sandbox does. Handlers and libraries may therefore keep
    per-invocation state in module globals (Powertools Metrics does, at class level) without two
    concurrent invocations mixing it; different functions still run concurrently.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        environment_overrides: Mapping[str, str] | None = None,
        *,
        log_router: LogRouter | None = None,
        log_sink: TextIO | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.spec = spec
        self.identity = identity
        self._log_router = log_router
        self._log_sink = log_sink
        self.environment = {
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": OFFLINE_REGION,
            "AWS_DEFAULT_REGION": OFFLINE_REGION,
            **spec.environment,
            **(environment_overrides or {}),
            **(identity.environment if identity else {}),  # reserved by Lambda: the role's credentials
        }
        self.handler: Callable[[Any, Any], Any] | None = None
        self.init_error: BaseException | None = None
        self._sandbox = threading.Lock()
        self._load()

    def _load(self) -> None:
        module_name, function_name = self.spec.handler.rsplit(".", 1)
        path = self.spec.code_dir / f"{module_name.replace('.', '/')}.py"
        unique_name = f"_offline_lambda_{self.spec.logical_id}_{module_name.replace('.', '_')}"
        try:
            with patched_environ(self.environment), self._logs(), acting_as(self.identity), own_default_session():
                module_spec = importlib.util.spec_from_file_location(unique_name, path)
                if module_spec is None or module_spec.loader is None:
                    raise ImportError(f"cannot import {path}")
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[unique_name] = module
                module_spec.loader.exec_module(module)
                self.handler = getattr(module, function_name)
            self._route_service_logger()
        except Exception as error:  # noqa: BLE001 - an init failure is reported on every invoke, as Lambda does
            self.init_error = error

    def _route_service_logger(self) -> None:
        """Point the Powertools logger's stream at the router.

        In Lambda each function has its own process; here they share the stdlib logging registry, and
        Powertools reuses the handler of the first Logger created for a service name, so that
        handler's stream must be the router for each function's lines to reach its own log.
        """
        if self._log_router is None:
            return
        service = self.environment.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
        for handler in logging.getLogger(service).handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is not self._log_router:
                handler.setStream(self._log_router)

    def _logs(self) -> AbstractContextManager[None]:
        return self._log_router.routed_to(self._log_sink) if self._log_router else nullcontext()

    def invoke(self, event: Any) -> tuple[bytes, bool]:
        """Run the handler; return the response body and whether it is a function error."""
        request_id = str(uuid.uuid4())
        if self.init_error is not None:
            return json.dumps(error_payload(self.init_error, request_id)).encode(), True
        assert self.handler is not None
        context = LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_size,
            invoked_function_arn=self.spec.arn,
            aws_request_id=request_id,
            timeout_ms=self.spec.timeout * 1000,
            log_group_name=f"/aws/lambda/{self.spec.logical_id}",
        )
        try:
            with self._sandbox, self._logs(), acting_as(self.identity):
                result = self.handler(event, context)
        except Exception as error:  # noqa: BLE001 - every handler exception becomes a function error
            return json.dumps(error_payload(error, request_id)).encode(), True
        try:
            return json.dumps(result).encode(), False
        except (TypeError, ValueError) as error:
            marshal = {"errorMessage": f"Unable to marshal response: {error}", "errorType": "Runtime.MarshalError",
                       "requestId": request_id, "stackTrace": []}
            return json.dumps(marshal).encode(), True


@contextmanager
def own_default_session() -> Iterator[None]:
    """A boto3 default session of the function's own while its module loads, as a Lambda process has: its
    module-level clients take their credentials and region from the function's environment, not from a session
    another function (or the test) made first and botocore cached them in."""
    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = saved


def function_name_from_path(raw: str) -> str:
    """Accept a name, a full ARN or a partial ARN, with or without a qualifier, as Lambda does."""
    name = unquote(raw)
    if name.startswith("arn:"):
        name = name.split(":")[6]
    elif ":function:" in name:
        name = name.split(":function:", 1)[1]
    return name.split(":", 1)[0]


def _service_error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse({"Type": "User", "message": message}, status_code=status,
                        headers={"x-amzn-ErrorType": error_type})


def create_app(functions: Mapping[str, LocalFunction]) -> Starlette:
    """The Lambda Invoke API for the given functions (keyed by function name)."""

    async def invoke(request: Request) -> Response:
        name = function_name_from_path(request.path_params["function_name"])
        function = functions.get(name)
        if function is None:
            arn = f"arn:aws:lambda:{OFFLINE_REGION}:{OFFLINE_ACCOUNT}:function:{name}"
            return _service_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        body = await request.body()
        try:
            event = json.loads(body) if body else {}
        except json.JSONDecodeError as error:
            return _service_error(400, "InvalidRequestContentException",
                                  f"Could not parse request body into json: {error}")
        invocation_type = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type == "DryRun":
            return Response(status_code=204)
        if invocation_type == "Event":
            threading.Thread(target=function.invoke, args=(event,), daemon=True).start()
            return Response(status_code=202)
        payload, failed = await run_in_threadpool(function.invoke, event)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if failed:
            headers["X-Amz-Function-Error"] = "Unhandled"
        return Response(payload, status_code=200, headers=headers, media_type="application/json")

    return Starlette(routes=[
        Route("/2015-03-31/functions/{function_name:path}/invocations", invoke, methods=["POST"]),
    ])
