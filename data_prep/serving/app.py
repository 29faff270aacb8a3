"""The local endpoint: SageMaker's inference container contract and its runtime API, on one server.

- `GET /ping`, `POST /invocations`: the contract a SageMaker inference container implements (`/ping`
  answers 200 with an empty body while the model is loaded, as SageMaker requires of a healthy container).
- `POST /endpoints/{name}/invocations`: the runtime API, so boto3's `sagemaker-runtime` client works
  with only AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME set. It is as strict as InvokeEndpoint: another endpoint
  name, an unknown `TargetVariant` or a malformed `InferenceId` is a `ValidationError` (HTTP 400); a body
  over 6 MB is refused while it streams in (HTTP 413), never buffered whole; a request the model rejects
  is `ModelError` (HTTP 424) carrying the container's original status and message. The answer names the
  variant that served it in `x-Amzn-Invoked-Production-Variant`.
- `GET /capture-health`: data capture's health as JSON (HTTP 503 while capture cannot write).

Production variants: the caller's TargetVariant picks one; otherwise each request goes to a variant at
random in proportion to the variants' weights, as SageMaker routes by InitialVariantWeight.

Scheduling: the image's header is read on the event loop (tens of microseconds, no pixel decoded). An image
of at most INLINE_MAX_PIXELS (a 32x32 PNG from serialize-image: decode and forward well under a millisecond)
is then classified inline, where a thread hop would cost a tenth of its time; anything larger is decoded
and classified on a small thread pool (two workers, one per core here), so a heavy image never holds up
`/ping` or other requests. Every answered request is handed to data capture (when configured) under the
variant that served it, with the caller's InferenceId.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from common import settings
from common.settings import DEFAULT_VARIANT, OFFLINE_ACCOUNT, OFFLINE_REGION
from data_prep.serving.capture import DataCapture
from data_prep.serving.predictor import PayloadError, Predictor

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's limit (6291456 bytes in botocore's service model)
INFERENCE_WORKERS = 2
INLINE_MAX_PIXELS = 512 * 512  # decode + forward of such an image stays within a few milliseconds
JSON = "application/json"
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"
INVOKED_VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
# botocore's sagemaker-runtime model: variant names like endpoint names; InferenceId 1..64 printable characters.
NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
INFERENCE_ID_PATTERN = re.compile(r"\S[\x20-\x7e]*")

log = logging.getLogger(__name__)


class Model(Protocol):
    """What the endpoint needs of a model (data_prep.serving.predictor.Predictor)."""

    def open(self, body: bytes, content_type: str) -> Image.Image:
        """Header only: cheap; raises PayloadError for a type, a body or a size it refuses."""

    def predict_image(self, image: Image.Image) -> list[float]:
        """Decode, prepare and classify: the heavy part."""


@dataclass(frozen=True)
class Variant:
    """One production variant: a name, its model and its routing weight (SageMaker's InitialVariantWeight)."""

    name: str
    model: Model
    weight: float = 1.0


@dataclass
class EndpointConfig:
    endpoint_name: str = field(default_factory=settings.endpoint_name)  # the only name the runtime API answers
    account: str = OFFLINE_ACCOUNT
    region: str = OFFLINE_REGION


class VariantConfigError(ValueError):
    """The variants cannot form an endpoint: no variant, a bad or repeated name, weights that route nothing."""


class UnknownVariantError(Exception):
    """The caller's TargetVariant names no variant of this endpoint."""


class Router:
    """Picks the variant for each request: the caller's TargetVariant, else at random by weight (seedable)."""

    def __init__(self, variants: Sequence[Variant], seed: int | None = None) -> None:
        if not variants:
            raise VariantConfigError("an endpoint needs at least one production variant")
        names = [variant.name for variant in variants]
        for name in names:
            if len(name) > 63 or not NAME_PATTERN.fullmatch(name):
                raise VariantConfigError(f"variant name {name!r} must be 1-63 letters, digits and hyphens")
        if len(set(names)) != len(names):
            raise VariantConfigError(f"variant names must differ, got {names}")
        if any(variant.weight < 0 for variant in variants) or sum(variant.weight for variant in variants) <= 0:
            raise VariantConfigError(f"variant weights must be >= 0 and not all 0, got "
                                     f"{[variant.weight for variant in variants]}")
        self.variants = list(variants)
        self._by_name = {variant.name: variant for variant in variants}
        self._weights = [variant.weight for variant in variants]
        self._random = random.Random(seed)

    def pick(self, target: str | None = None) -> Variant:
        if target is not None:
            try:
                return self._by_name[target]
            except KeyError:
                raise UnknownVariantError(target) from None
        if len(self.variants) == 1:
            return self.variants[0]
        return self._random.choices(self.variants, self._weights)[0]


class ContainerError(Exception):
    """The container refuses the request with `status` (the runtime API reports it inside a ModelError)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class BodyTooLargeError(ContainerError):
    """The body passed InvokeEndpoint's 6 MB: refused before the model sees it."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


async def read_body(request: Request, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """The request body, read as it streams in and abandoned as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"the request body is {declared} bytes; InvokeEndpoint accepts at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"the request body exceeds {limit} bytes, InvokeEndpoint's limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _runtime_error(status: int, code: str, body: dict[str, object]) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=JSON, headers={"x-amzn-ErrorType": code})


def _validation_error(message: str) -> Response:
    return _runtime_error(400, "ValidationError", {"message": message})


def _constraint_message(field_name: str, value: str) -> str | None:
    """AWS's wording for a header that breaks the service model's constraints, or None when it is valid."""
    if field_name == "inferenceId":
        if len(value) > 64:
            return (f"1 validation error detected: Value '{value}' at 'inferenceId' failed to satisfy constraint: "
                    "Member must have length less than or equal to 64")
        if not INFERENCE_ID_PATTERN.fullmatch(value):
            return (f"1 validation error detected: Value '{value}' at 'inferenceId' failed to satisfy constraint: "
                    "Member must satisfy regular expression pattern: \\A\\S[\\p{Print}]*\\z")
    elif len(value) > 63 or not NAME_PATTERN.fullmatch(value):
        return (f"1 validation error detected: Value '{value}' at '{field_name}' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])* and length <= 63")
    return None


def create_app(variants: Model | Sequence[Variant], capture: DataCapture | None = None,
               config: EndpointConfig | None = None, *, seed: int | None = None,
               workers: int = INFERENCE_WORKERS) -> Starlette:
    """The endpoint's ASGI app. `variants`: one model (served as the single variant AllTraffic) or variants."""
    config = config or EndpointConfig()
    router = Router([Variant(DEFAULT_VARIANT, variants)] if not isinstance(variants, Sequence) else variants, seed)
    executor = ThreadPoolExecutor(workers, thread_name_prefix="inference")

    def run(variant: Variant, image: Image.Image, body: bytes, content_type: str, inference_id: str | None) -> bytes:
        """Decode, forward, encode, hand to capture (inline, or on a worker thread for a large image)."""
        answer = Predictor.encode(variant.model.predict_image(image))
        if capture is not None:
            capture.capture(body, content_type, answer, JSON, variant=variant.name, inference_id=inference_id)
        return answer

    async def infer(request: Request, variant: Variant, inference_id: str | None) -> bytes:
        body = await read_body(request)
        content_type = request.headers.get("content-type", "")
        try:
            image = variant.model.open(body, content_type)
            width, height = image.size
            if width * height <= INLINE_MAX_PIXELS:
                return run(variant, image, body, content_type, inference_id)
            return await asyncio.get_running_loop().run_in_executor(
                executor, run, variant, image, body, content_type, inference_id)
        except PayloadError as error:
            raise ContainerError(error.status, str(error)) from error
        except Exception as error:
            log.exception("inference failed on variant %s", variant.name)
            raise ContainerError(500, f"the model server failed on this request ({type(error).__name__}); "
                                      "see the endpoint's log") from error

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def capture_health(request: Request) -> Response:
        if capture is None:
            return Response(json.dumps({"status": "disabled"}), media_type=JSON)
        health = capture.health()
        return Response(json.dumps(health.as_dict()), status_code=200 if health.healthy else 503, media_type=JSON)

    async def invocations(request: Request) -> Response:
        """The container contract; it routes by weight too, or to the variant the header names."""
        try:
            variant = router.pick(request.headers.get(TARGET_VARIANT_HEADER))
            answer = await infer(request, variant, request.headers.get(INFERENCE_ID_HEADER))
        except UnknownVariantError as error:
            return Response(json.dumps({"message": f"no variant named {error}"}), status_code=400, media_type=JSON)
        except ContainerError as error:
            return Response(json.dumps({"message": error.message}), status_code=error.status, media_type=JSON)
        return Response(answer, media_type=JSON, headers={INVOKED_VARIANT_HEADER: variant.name})

    async def runtime_invoke(request: Request) -> Response:
        name = request.path_params["endpoint_name"]
        if name != config.endpoint_name:
            return _validation_error(f"Endpoint {name} of account {config.account} not found.")
        inference_id = request.headers.get(INFERENCE_ID_HEADER)
        target = request.headers.get(TARGET_VARIANT_HEADER)
        for field_name, value in (("inferenceId", inference_id), ("targetVariant", target)):
            problem = _constraint_message(field_name, value) if value is not None else None
            if problem:
                return _validation_error(problem)
        try:
            variant = router.pick(target)
        except UnknownVariantError:
            return _validation_error(f"Variant {target} of endpoint {name} of account {config.account} not found. "
                                     f"Its variants: {', '.join(v.name for v in router.variants)}.")
        try:
            answer = await infer(request, variant, inference_id)
        except BodyTooLargeError as error:
            return _runtime_error(413, "ValidationError", {"message": error.message})
        except ContainerError as error:
            arn = f"arn:aws:logs:{config.region}:{config.account}:log-group:/aws/sagemaker/Endpoints/{name}"
            kind = "client" if error.status < 500 else "server"
            message = (f"Received {kind} error ({error.status}) from primary with message \"{error.message}\". "
                       f"See {arn} for more information.")
            return _runtime_error(424, "ModelError", {"message": message, "OriginalStatusCode": error.status,
                                                      "OriginalMessage": error.message, "LogStreamArn": arn})
        return Response(answer, media_type=JSON, headers={INVOKED_VARIANT_HEADER: variant.name})

    return Starlette(routes=[
        Route("/ping", ping, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/endpoints/{endpoint_name}/invocations", runtime_invoke, methods=["POST"]),
        Route("/capture-health", capture_health, methods=["GET"]),
    ])
