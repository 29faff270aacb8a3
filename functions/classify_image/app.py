"""classify-image: send the serialized image to the SageMaker endpoint and validate its answer.

The runtime client makes exactly one attempt: retries belong to the state machine, where they are
visible in the execution history and back off by its Retry policy. Transient endpoint faults are
raised as EndpointUnavailableError so the state machine can retry them by name: throttling and 5xx
answers, and every transport fault (refused or reset connection, a stall past the read timeout, a
body cut short), whether it happens before the answer or while its body is read. The client's
connect and read timeouts are bounded well below the ClassifyImage task's TimeoutSeconds and the
function's Timeout, so a stalled endpoint ends as that named, retried error, never as a task timeout.
Everything the endpoint says that is not a probability per class is raised as InvalidInferenceError.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError

ENDPOINT_NAME = os.environ.get("ENDPOINT_NAME", "")
CLASS_NAMES = [name.strip() for name in os.environ.get("CLASS_NAMES", "").split(",") if name.strip()]
CONTENT_TYPE = "image/png"
PROBABILITY_SUM_TOLERANCE = 1e-3
# One attempt takes at most about CONNECT + READ seconds (a test holds this below the task's TimeoutSeconds).
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 20

# Every botocore error that means "the HTTP exchange failed", not "the endpoint answered no": connection
# refused/reset/timed out (ConnectionError), closed or stalled mid-answer and cut bodies (HTTPClientError:
# ConnectionClosedError, ReadTimeoutError, ResponseStreamingError), a body shorter than its Content-Length.
TRANSPORT_ERRORS = (ConnectionError, HTTPClientError, IncompleteReadError)


def make_runtime_client(connect_timeout: float = CONNECT_TIMEOUT_SECONDS, read_timeout: float = READ_TIMEOUT_SECONDS,
                   **options: Any) -> Any:
    """The sagemaker-runtime client: one attempt, bounded timeouts (`options` go to boto3.client)."""
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=connect_timeout,
                    read_timeout=read_timeout)
    return boto3.client("sagemaker-runtime", config=config, **options)


runtime = make_runtime_client()
logger = Logger()

# Error codes of InvokeEndpoint that say "try again later", not "this request is wrong".
TRANSIENT_ERROR_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "InternalDependencyException",
     "ModelNotReadyException"}
)


class ConfigurationError(Exception):
    """ENDPOINT_NAME or CLASS_NAMES is missing from the function's environment."""


class InvalidEventError(Exception):
    """The event has no base64 `image_data` in its `body`."""


class EndpointUnavailableError(Exception):
    """The endpoint throttled, failed with a 5xx, or the exchange failed (refused, reset, stalled, cut short):
    worth retrying."""


class ModelInvocationError(Exception):
    """The endpoint refused the request (unknown endpoint, ModelError, validation): retrying will not help."""


class InvalidInferenceError(Exception):
    """The endpoint answered, but not with one probability per class summing to 1."""


def decode_image(body: dict[str, Any]) -> bytes:
    """Return the raw image bytes: the endpoint wants bytes, never the base64 text."""
    encoded = body.get("image_data")
    if not isinstance(encoded, str) or not encoded:
        raise InvalidEventError("body.image_data must be a non-empty base64 string")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidEventError(f"body.image_data is not valid base64: {error}") from error


def invoke_endpoint(runtime_client: Any, endpoint_name: str, image: bytes) -> bytes:
    """Call InvokeEndpoint once and read its answer; translate failures into retryable and final errors."""
    try:
        response = runtime_client.invoke_endpoint(EndpointName=endpoint_name, ContentType=CONTENT_TYPE, Body=image)
        payload: bytes = response["Body"].read()  # a reset or stall here is as transient as one before the headers
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = error.response.get("Error", {}).get("Message", str(error))
        if code in TRANSIENT_ERROR_CODES or status >= 500:
            raise EndpointUnavailableError(f"{endpoint_name}: {code} (HTTP {status}): {message}") from error
        raise ModelInvocationError(f"{endpoint_name}: {code} (HTTP {status}): {message}") from error
    except TRANSPORT_ERRORS as error:
        raise EndpointUnavailableError(f"{endpoint_name}: {type(error).__name__}: {error}") from error
    return payload


def parse_inferences(payload: bytes, num_classes: int) -> list[float]:
    """Accept only a JSON list of num_classes probabilities in [0, 1] that sum to 1."""
    try:
        values = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInferenceError(f"endpoint answer is not JSON: {payload[:100]!r}") from error
    if (
        not isinstance(values, list)
        or len(values) != num_classes
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    ):
        raise InvalidInferenceError(f"expected a list of {num_classes} probabilities, got {str(values)[:100]}")
    if any(v < 0 or v > 1 for v in values) or abs(sum(values) - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise InvalidInferenceError(f"probabilities must lie in [0, 1] and sum to 1, got {values}")
    return [float(v) for v in values]


def top_prediction(inferences: list[float], class_names: list[str]) -> dict[str, Any]:
    best = max(range(len(inferences)), key=inferences.__getitem__)
    return {"label": class_names[best], "confidence": inferences[best]}


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if not ENDPOINT_NAME or len(CLASS_NAMES) < 2:
        raise ConfigurationError(f"ENDPOINT_NAME={ENDPOINT_NAME!r} and CLASS_NAMES={CLASS_NAMES!r} must be set")
    body = event.get("body") if isinstance(event, dict) else None
    if not isinstance(body, dict):
        raise InvalidEventError("expected the serialize-image output: an object with a `body` object")
    image = decode_image(body)
    inferences = parse_inferences(invoke_endpoint(runtime, ENDPOINT_NAME, image), len(CLASS_NAMES))
    prediction = top_prediction(inferences, CLASS_NAMES)
    logger.info("image classified", extra={"s3_key": body.get("s3_key"), **prediction})
    result = {k: v for k, v in body.items() if k != "image_data"}
    return {"statusCode": 200, "body": {**result, "inferences": inferences, "prediction": prediction}}
