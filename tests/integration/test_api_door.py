"""POST /classifications offline: the template's API (its IAM authoriser and mapping templates) in front of the
EXPRESS machine run with StartSyncExecution's semantics, the real handlers, a scripted endpoint."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from testkit.api_client import ApiClient, signed_headers
from testkit.images import png_bytes
from tests.support import SCRIPTED_STACK
from workflow.offline.runtime import OfflineRuntime
from workflow.offline.stub_endpoint import Answer

ROUTE = "/classifications"


@pytest.fixture(scope="module")
def api_runtime(endpoint, lambda_logs):
    with OfflineRuntime(endpoint.url, lambda_log_dir=lambda_logs, serve_api=True, trigger=False,
                        parameter_overrides=SCRIPTED_STACK) as offline:
        yield offline


@pytest.fixture
def client(api_runtime):
    api = ApiClient(api_runtime.api_url)
    yield api
    api.close()


def test_a_raw_png_is_classified_within_the_request(api_runtime, client, endpoint):
    image = png_bytes(seed=21)
    endpoint.enqueue([Answer.probabilities(0.96, 0.04)])

    answer = client.post(ROUTE, image, "image/png")

    assert (answer.status, answer.body) == (200, {"label": "bicycle", "confidence": 0.96, "inferences": [0.96, 0.04]})
    assert answer.headers["content-type"] == "application/json"
    (invocation,) = endpoint.invocations
    assert invocation.body == image  # a 32x32 PNG reaches the endpoint unchanged
    key = f"uploads/{hashlib.sha256(image).hexdigest()}.png"  # staged, so every decision points at an object
    assert api_runtime.s3.get_object(Bucket=api_runtime.bucket, Key=key)["Body"].read() == image


def test_an_s3_location_and_a_base64_image_are_the_same_request(api_runtime, client, endpoint):
    api_runtime.put_image("incoming/api/photo.jpg", png_bytes(200, 120, seed=22))
    endpoint.enqueue([Answer.probabilities(0.02, 0.98), Answer.probabilities(0.02, 0.98)])

    by_key = client.post(ROUTE, {"s3_bucket": api_runtime.bucket, "s3_key": "incoming/api/photo.jpg"})
    by_value = client.post(ROUTE, {"image_data": base64.b64encode(png_bytes(200, 120, seed=22)).decode()})

    assert by_key.status == by_value.status == 200
    assert by_key.body == by_value.body == {"label": "motorcycle", "confidence": 0.98, "inferences": [0.02, 0.98]}
    assert endpoint.invocations[0].body == endpoint.invocations[1].body


def test_low_confidence_is_recorded_for_review_and_answered_202(api_runtime, client, endpoint):
    endpoint.enqueue([Answer.probabilities(0.55, 0.45)])

    answer = client.post(ROUTE, png_bytes(seed=23), "image/png")

    assert answer.status == 202
    assert answer.body["label"] == "bicycle" and answer.body["inferences"] == [0.55, 0.45]
    record = api_runtime.review_records()[answer.body["review_key"]]
    assert answer.body["review_key"] == f"review/{answer.headers['x-amzn-requestid']}.json"  # named by the request
    assert record["s3_key"].startswith("uploads/") and record["inferences"] == [0.55, 0.45]
    assert record["error"]["errorType"] == "LowConfidenceError"


@pytest.mark.parametrize("body,content_type,status,error", [
    ({"s3_bucket": "scones-offline", "s3_key": "incoming/missing.png"}, "application/json", 404, "ImageNotFoundError"),
    # outside the prefixes serialize-image's role may read: IAM refuses before S3 looks (offline IAM, as on AWS)
    ({"s3_bucket": "scones-offline", "s3_key": "missing.png"}, "application/json", 403, "ImageNotServedError"),
    (b"these are notes, not pixels", "image/png", 415, "NotAnImageError"),
    ({}, "application/json", 400, "InvalidEventError"),
    ({"image_data": "@@not-base64@@"}, "application/json", 400, "InvalidEventError"),
])
def test_named_errors_come_back_with_their_status_and_name(client, endpoint, body, content_type, status, error):
    answer = client.post(ROUTE, body, content_type)
    assert (answer.status, answer.body["error"]) == (status, error)
    assert "stackTrace" not in json.dumps(answer.body)
    assert endpoint.invocations == []


def test_an_endpoint_model_error_is_a_502(client, endpoint):
    endpoint.enqueue([Answer.error(424, "ModelError", "unable to evaluate payload provided")])
    answer = client.post(ROUTE, png_bytes(seed=24), "image/png")
    assert (answer.status, answer.body["error"]) == (502, "ModelInvocationError")


def test_the_largest_image_the_execution_input_takes_passes_and_one_byte_more_is_413(client, endpoint):
    # The input is {"image_data": "<base64>"} (17 characters around the base64), at most 262144 characters.
    largest = (262144 - len('{"image_data": ""}')) // 4 * 3
    answer = client.post(ROUTE, b"\x89PNG" + bytes(largest - 4), "image/png")
    assert (answer.status, answer.body["error"]) == (415, "NotAnImageError")  # it ran: the input fitted
    answer = client.post(ROUTE, bytes(largest + 3), "image/png")
    assert (answer.status, answer.body["error"]) == (413, "RequestTooLarge")
    answer = client.post(ROUTE, bytes(10 * 1024 * 1024 + 1), "image/png")
    assert (answer.status, answer.body) == (413, {"message": "Request Too Long"})  # API Gateway's own limit
    assert endpoint.invocations == []


def test_an_unsigned_caller_is_refused_as_api_gateway_refuses_it(api_runtime, client, endpoint):
    answer = client.post(ROUTE, png_bytes(), "image/png", signed=False)
    assert (answer.status, answer.body) == (403, {"message": "Missing Authentication Token"})
    answer = client.post(ROUTE, png_bytes(), "image/png", signed=False,
                         headers={"Authorization": "Bearer a-token"})
    assert answer.status == 403 and "AWS4-HMAC-SHA256" in answer.body["message"]
    url = api_runtime.api_url + ROUTE
    wrong_service = signed_headers(url, b"{}", "application/json")
    wrong_service["Authorization"] = wrong_service["Authorization"].replace("/execute-api/", "/s3/")
    answer = client.post(ROUTE, b"{}", signed=False, headers=wrong_service)
    assert (answer.status, answer.body["message"].strip()) == (
        403, "Credential should be scoped to correct service: 'execute-api'.")
    assert endpoint.invocations == []


def test_unknown_routes_and_media_types(client):
    assert client.post("/elsewhere", b"{}").status == 403
    answer = client.post(ROUTE, b"hello", "text/plain")
    assert (answer.status, answer.body) == (415, {"message": "Unsupported Media Type"})
