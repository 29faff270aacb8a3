"""The API's mapping templates from template.yaml, evaluated by the offline VTL engine on StartSyncExecution's
answers: the status and body each execution outcome gives a caller."""

from __future__ import annotations

import json

import pytest

from common.settings import TEMPLATE_PATH
from common.template import SamTemplate
from workflow.offline.vtl import BodyNotJsonError, Input, escape_javascript, render

INTEGRATION = SamTemplate(TEMPLATE_PATH).api("ClassificationApi").definition["paths"]["/classifications"]["post"][
    "x-amazon-apigateway-integration"]
RESPONSE = INTEGRATION["responses"]["default"]["responseTemplates"]["application/json"]
CONTEXT = {"requestId": "req-1"}
EXPRESS = "arn:aws:states:us-east-1:123456789012:stateMachine:ImageClassificationExpressStateMachine"


def answer(**fields) -> tuple[int | None, dict]:
    rendered = render(RESPONSE, Input(json.dumps({"executionArn": "arn", "startDate": 1.7e9, **fields})), CONTEXT)
    return rendered.status_override, json.loads(rendered.body)


def lambda_cause(error_type: str, message: str) -> str:
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": "r", "stackTrace": ["..."]})


def test_success_is_the_prediction():
    output = {"statusCode": 200, "body": {"s3_bucket": "b", "s3_key": "k", "inferences": [0.97, 0.03],
                                          "prediction": {"label": "bicycle", "confidence": 0.97}}}
    assert answer(status="SUCCEEDED", output=json.dumps(output)) == (
        None, {"label": "bicycle", "confidence": 0.97, "inferences": [0.97, 0.03]})


def test_low_confidence_is_202_with_the_review_key():
    cause = {"bucket": "b", "key": "uploads/x.png", "label": "motorcycle", "confidence": 0.61,
             "inferences": [0.39, 0.61], "model_version": "v1", "execution_id": "arn",
             "review_key": "review/req-1.json"}
    assert answer(status="FAILED", error="LowConfidenceError", cause=json.dumps(cause)) == (
        202, {"label": "motorcycle", "confidence": 0.61, "inferences": [0.39, 0.61], "review_key": "review/req-1.json"})


@pytest.mark.parametrize("error,status", [("InvalidEventError", 400), ("ImageNotFoundError", 404),
                                          ("ImageTooLargeError", 413), ("NotAnImageError", 415),
                                          ("ModelInvocationError", 502), ("InvalidInferenceError", 502),
                                          ("EndpointUnavailableError", 503), ("ConfigurationError", 500),
                                          ("ReviewRecordError", 500), ("EventBridge.FailedEntry", 500)])
def test_named_errors_map_to_statuses_with_their_name_and_message_but_no_stack_trace(error, status):
    message = "s3://b/it's \"quoted\"/vélo.png does not exist"
    assert answer(status="FAILED", error=error, cause=lambda_cause(error, message)) == (
        status, {"error": error, "message": message})


def test_a_timed_out_execution_is_504_and_a_plain_text_cause_is_kept():
    assert answer(status="TIMED_OUT") == (504, {"error": "States.Timeout", "message": ""})
    assert answer(status="FAILED", error="States.Runtime", cause="An error occurred") == (
        500, {"error": "States.Runtime", "message": "An error occurred"})


def test_service_refusals_of_the_input():
    too_long = INTEGRATION["responses"]["4\\d{2}"]
    message = ("1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length "
               "less than or equal to 262144")
    rendered = render(too_long["responseTemplates"]["application/json"],
                      Input(json.dumps({"__type": "ValidationException", "message": message})), CONTEXT)
    assert (too_long["statusCode"], rendered.status_override, json.loads(rendered.body)["error"]) == (
        "400", 413, "RequestTooLarge")
    rendered = render(too_long["responseTemplates"]["application/json"], Input(json.dumps({
        "__type": "InvalidExecutionInput", "message": "Invalid State Machine Execution Input: 'x'"})), CONTEXT)
    assert (rendered.status_override, json.loads(rendered.body)) == (
        None, {"error": "InvalidRequest", "message": "Invalid State Machine Execution Input: 'x'"})


@pytest.mark.parametrize("body", [{"s3_bucket": "b", "s3_key": "it's/vélo \"1\".png"}, {"image_data": "iVBORw0K+/="},
                                  {}])
def test_the_json_request_template_passes_the_body_as_the_execution_input(body):
    rendered = render(INTEGRATION["requestTemplates"]["application/json"], Input(json.dumps(body)), CONTEXT)
    request = json.loads(rendered.body)
    assert (request["stateMachineArn"], request["name"]) == (EXPRESS, "req-1")
    assert json.loads(request["input"]) == body


def test_a_raw_image_becomes_image_data():
    rendered = render(INTEGRATION["requestTemplates"]["image/png"], Input("iVBORw0KGgo="), CONTEXT)
    assert json.loads(json.loads(rendered.body)["input"]) == {"image_data": "iVBORw0KGgo="}


def test_a_json_body_that_does_not_parse_fails_as_api_gateway_does():
    with pytest.raises(BodyNotJsonError, match="Could not parse request body into json"):
        render(INTEGRATION["requestTemplates"]["application/json"], Input("{"), CONTEXT)


def test_escape_javascript_follows_commons_lang():
    assert escape_javascript("it's \"a\" \\ / é 🚲\n") == "it\\'s \\\"a\\\" \\\\ \\/ \\u00E9 \\uD83D\\uDEB2\\n"
    assert escape_javascript(None) == ""
