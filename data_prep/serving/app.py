"""The local endpoint: SageMaker's inference container contract and its runtime API, on one server.

- `GET /ping`, `POST /invocations`: the contract a SageMaker inference container implements.
- `POST /endpoints/{name}/invocations`: the runtime API, so boto3's `sagemaker-runtime` client works
  with only AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME set. Errors there take the runtime API's shape
  (`x-amzn-ErrorType` header): a request the model rejects is `ModelError` (HTTP 424) carrying the
  container's original status and message, as InvokeEndpoint reports it.

Every answered request is handed to data capture (when configured) after the response is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from common.settings import DEFAULT_VARIANT, OFFLINE_ACCOUNT, OFFLINE_REGION
from data_prep.serving.capture import DataCapture
from data_prep.serving.predictor import Predictor, UndecodableImageError, UnsupportedContentTypeError

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's limit
JSON = "application/json"


@dataclass
class EndpointConfig:
    endpoint_name: str | None = None  # None: answer any name
    account: str = OFFLINE_ACCOUNT
    region: str = OFFLINE_REGION


@dataclass
class ContainerError(Exception):
    status: int
    message: str


def _runtime_error(status: int, code: str, body: dict[str, object]) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=JSON, headers={"x-amzn-ErrorType": code})


def create_app(predictor: Predictor, capture: DataCapture | None = None,
               config: EndpointConfig | None = None) -> Starlette:
    config = config or EndpointConfig()

    async def infer(request: Request) -> bytes:
        """Run the model on the request; raise ContainerError with the container's status otherwise."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
            raise ContainerError(413, f"payload of {declared} bytes exceeds {MAX_PAYLOAD_BYTES}")
        body = await request.body()
        if len(body) > MAX_PAYLOAD_BYTES:
            raise ContainerError(413, f"payload of {len(body)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        content_type = request.headers.get("content-type", "")
        try:
            probabilities = predictor.predict(body, content_type)
        except UnsupportedContentTypeError as error:
            raise ContainerError(415, str(error)) from error
        except UndecodableImageError as error:
            raise ContainerError(400, str(error)) from error
        answer = json.dumps(probabilities).encode()
        if capture is not None:
            capture.capture(body, content_type, answer, JSON)
        return answer

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def invocations(request: Request) -> Response:
        try:
            answer = await infer(request)
        except ContainerError as error:
            return Response(json.dumps({"message": error.message}), status_code=error.status, media_type=JSON)
        return Response(answer, media_type=JSON)

    async def runtime_invoke(request: Request) -> Response:
        name = request.path_params["endpoint_name"]
        if config.endpoint_name is not None and name != config.endpoint_name:
            message = f"Endpoint {name} of account {config.account} not found."
            return _runtime_error(400, "ValidationError", {"message": message})
        try:
            answer = await infer(request)
        except ContainerError as error:
            if error.status == 413:
                return _runtime_error(413, "ValidationError", {"message": error.message})
            arn = f"arn:aws:logs:{config.region}:{config.account}:log-group:/aws/sagemaker/Endpoints/{name}"
            message = (f"Received client error ({error.status}) from primary with message \"{error.message}\". "
                       f"See {arn} for more information.")
            return _runtime_error(424, "ModelError", {"message": message, "OriginalStatusCode": error.status,
                                                      "OriginalMessage": error.message, "LogStreamArn": arn})
        return Response(answer, media_type=JSON, headers={"x-Amzn-Invoked-Production-Variant": DEFAULT_VARIANT})

    return Starlette(routes=[
        Route("/ping", ping, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/endpoints/{endpoint_name}/invocations", runtime_invoke, methods=["POST"]),
    ])
