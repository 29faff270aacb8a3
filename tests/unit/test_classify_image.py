from __future__ import annotations

import base64
import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from common import settings
from functions.classify_image import app
from tests.support import load_event

ENDPOINT = settings.endpoint_name()


def answer(payload: bytes) -> dict:
    return {"Body": StreamingBody(io.BytesIO(payload), len(payload)), "ContentType": "application/json"}


@pytest.fixture
def stubbed_runtime(monkeypatch):
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    monkeypatch.setattr(app, "runtime", client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_sample_event_sends_png_bytes_and_returns_inferences_without_the_image(stubbed_runtime, lambda_context):
    event = load_event("classify_image.json")
    image = base64.b64decode(event["body"]["image_data"])
    classes = settings.class_names()  # the function's CLASS_NAMES: one probability per class, the first the top
    inferences = [0.9986, *[round(0.0014 / (len(classes) - 1), 6)] * (len(classes) - 1)]
    stubbed_runtime.add_response(
        "invoke_endpoint", answer(json.dumps(inferences).encode()),
        {"EndpointName": ENDPOINT, "ContentType": "image/png", "Body": image},
    )

    result = app.lambda_handler(event, lambda_context)

    assert result == {
        "statusCode": 200,
        "body": {
            "s3_bucket": "scones-offline",
            "s3_key": "scones-image-classification/test/bicycle_s_000513.png",
            "content_sha256": event["body"]["content_sha256"],  # passed on for the filter's audit choice
            "inferences": inferences,
            "prediction": {"label": classes[0], "confidence": 0.9986},
        },
    }


@pytest.mark.parametrize("code,status", [("ThrottlingException", 400), ("ServiceUnavailable", 503),
                                         ("InternalFailure", 500), ("ModelNotReadyException", 429)])
def test_transient_endpoint_faults_raise_endpoint_unavailable(stubbed_runtime, lambda_context, code, status):
    stubbed_runtime.add_client_error("invoke_endpoint", service_error_code=code, http_status_code=status)
    with pytest.raises(app.EndpointUnavailableError, match=f"{code} \\(HTTP {status}\\)"):
        app.lambda_handler(load_event("classify_image.json"), lambda_context)


@pytest.mark.parametrize("code,status", [("ModelError", 424), ("ValidationError", 400)])
def test_final_endpoint_faults_raise_model_invocation_error(stubbed_runtime, lambda_context, code, status):
    stubbed_runtime.add_client_error("invoke_endpoint", service_error_code=code, http_status_code=status,
                                     service_message="unable to evaluate payload")
    with pytest.raises(app.ModelInvocationError, match="unable to evaluate payload"):
        app.lambda_handler(load_event("classify_image.json"), lambda_context)


@pytest.mark.parametrize("payload", [b"not json", b'{"probabilities": [0.5, 0.5]}', b"[0.9]", b"[0.9, 0.3]",
                                     b"[1.2, -0.2]", b'[0.5, "0.5"]', b"[true, false]", b"[NaN, 1]"])
def test_malformed_answers_raise_invalid_inference(payload):
    with pytest.raises(app.InvalidInferenceError):
        app.parse_inferences(payload, num_classes=2)


def test_answer_summing_to_one_within_tolerance_is_accepted():
    assert app.parse_inferences(b"[0.7, 0.3004]", num_classes=2) == [0.7, 0.3004]


@pytest.mark.parametrize("body", [{}, {"image_data": ""}, {"image_data": "not base64!"}])
def test_event_without_valid_image_data_is_invalid(body, lambda_context):
    with pytest.raises(app.InvalidEventError):
        app.lambda_handler({"body": body}, lambda_context)


def test_prediction_names_the_top_class():
    assert app.top_prediction([0.2, 0.8], ["bicycle", "motorcycle"]) == {"label": "motorcycle", "confidence": 0.8}


def test_one_attempt_ends_well_before_the_task_and_the_function_time_out():
    """A stalled endpoint must end as EndpointUnavailableError (retried by name), never as States.Timeout."""
    from common.settings import TEMPLATE_PATH
    from common.template import SamTemplate

    template = SamTemplate(TEMPLATE_PATH)
    machine = json.loads(template.state_machine("ImageClassificationStateMachine").definition_path.read_text())
    tasks = [state for state in machine["States"].values()
             if state.get("Parameters", {}).get("FunctionName") == "${ClassifyImageFunctionArn}"]
    assert len(tasks) == 1
    function_timeout = template.functions()["ClassifyImageFunction"].timeout
    client = app.make_runtime_client()
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (
        app.CONNECT_TIMEOUT_SECONDS, app.READ_TIMEOUT_SECONDS)
    assert client.meta.config.retries["total_max_attempts"] == 1
    worst_attempt = app.CONNECT_TIMEOUT_SECONDS + app.READ_TIMEOUT_SECONDS
    margin = 5  # decode, validation, logging and the Lambda's own overhead
    assert worst_attempt + margin <= min(tasks[0]["TimeoutSeconds"], function_timeout)
    assert app.runtime.meta.config.read_timeout == app.READ_TIMEOUT_SECONDS
