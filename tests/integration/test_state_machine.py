"""Executes statemachine/image_classification.asl.json with the real handlers (see workflow/offline.py)."""

from __future__ import annotations

import json

from common.settings import staged_dataset_key
from imaging.preprocess import content_hash, to_model_input
from testkit.images import png_bytes
from tests.support import HANG_GUARD_S, SCRIPTED_THRESHOLD, load_event
from workflow.offline.stub_endpoint import Answer

KEY = staged_dataset_key("test/bicycle_s_000513.png")  # where serialize-image may read it
UNSURE = staged_dataset_key("test/motorcycle_s_000001.png")


def task_events(runtime, result, state: str) -> list[dict]:
    """The Task*/Lambda events of one state, in order, from the execution history."""
    events, current = [], None
    for event in runtime.history(result.execution_arn):
        if event["type"].endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
        elif current == state and event["type"] in {"TaskScheduled", "TaskFailed", "TaskSucceeded"}:
            events.append(event)
    return events


def test_confident_image_succeeds_with_the_classified_body(runtime, endpoint):
    image = png_bytes(seed=7)
    runtime.put_image(KEY, image)
    endpoint.enqueue([Answer.probabilities(0.97, 0.03)])

    result = runtime.run(KEY)

    assert result.status == "SUCCEEDED"
    assert result.output == {
        "statusCode": 200,
        "body": {"s3_bucket": "scones-offline", "s3_key": KEY, "content_sha256": content_hash(to_model_input(image)),
                 "inferences": [0.97, 0.03], "prediction": {"label": "bicycle", "confidence": 0.97}},
        "audit": {"sampled": False, "rate": 0.02},
    }
    (invocation,) = endpoint.invocations
    assert (invocation.endpoint_name, invocation.content_type, invocation.body) == (
        "scones-image-classifier", "image/png", image)


def test_console_execution_input_event_runs(runtime, endpoint):
    event = load_event("execution_input.json")
    runtime.put_image(event["s3_key"], png_bytes())
    arn = runtime.sfn.start_execution(stateMachineArn=runtime.state_machine_arn, input=json.dumps(event))[
        "executionArn"]
    assert runtime.wait(arn).status == "SUCCEEDED"


def test_low_confidence_fails_by_name_and_is_recorded_for_review(runtime, endpoint):
    runtime.put_image(UNSURE, png_bytes(seed=8))
    endpoint.enqueue([Answer.probabilities(0.6, 0.4)])

    result = runtime.run(UNSURE)

    assert (result.status, result.error) == ("FAILED", "LowConfidenceError")
    record = runtime.review_records()[f"review/{result.name}.json"]
    assert record["s3_key"] == UNSURE
    assert record["inferences"] == [0.6, 0.4]
    assert record["prediction"] == {"label": "bicycle", "confidence": 0.6}
    assert record["content_sha256"] == content_hash(to_model_input(png_bytes(seed=8)))
    assert record["model_version"] == "unversioned"
    assert record["error"]["errorMessage"] == (
        f"{UNSURE}: top confidence 0.6000 is below the threshold {float(SCRIPTED_THRESHOLD)}")
    assert record["execution_arn"] == result.execution_arn
    assert record["recorded_at"].startswith("20")


def test_missing_object_fails_with_image_not_found(runtime, endpoint):
    missing = staged_dataset_key("test/does_not_exist.png")
    result = runtime.run(missing)
    assert (result.status, result.error) == ("FAILED", "ImageNotFoundError")
    assert result.cause_message == f"s3://scones-offline/{missing} does not exist (NoSuchKey)"
    assert endpoint.invocations == []


def test_non_image_object_fails_with_not_an_image(runtime, endpoint):
    runtime.put_image(staged_dataset_key("test/notes.png"), b"these are notes, not pixels")
    result = runtime.run(staged_dataset_key("test/notes.png"))
    assert (result.status, result.error) == ("FAILED", "NotAnImageError")
    assert endpoint.invocations == []


def test_oversize_image_fails_with_image_too_large(runtime, endpoint):
    big = png_bytes(1400, 1400, seed=3)
    assert len(big) > 5 * 1024 * 1024
    runtime.put_image("incoming/huge.png", big)
    result = runtime.run("incoming/huge.png")
    assert (result.status, result.error) == ("FAILED", "ImageTooLargeError")
    assert f"is {len(big)} bytes; the limit is 5242880" in result.cause_message


def test_throttled_twice_then_answered_succeeds_through_retry(runtime, endpoint):
    runtime.put_image(KEY, png_bytes(seed=9))
    endpoint.enqueue([Answer.throttled(), Answer.throttled(), Answer.probabilities(0.99, 0.01)])

    result = runtime.run(KEY, timeout=HANG_GUARD_S)

    assert result.status == "SUCCEEDED"
    classify = task_events(runtime, result, "ClassifyImage")
    assert [e["type"] for e in classify] == ["TaskScheduled", "TaskFailed", "TaskScheduled", "TaskFailed",
                                             "TaskScheduled", "TaskSucceeded"]
    assert {e["taskFailedEventDetails"]["error"] for e in classify if e["type"] == "TaskFailed"} == {
        "EndpointUnavailableError"}
    assert len(endpoint.invocations) == 3
    assert result.duration_s >= 3  # IntervalSeconds 1, BackoffRate 2: waits of 1 s and 2 s


def test_malformed_endpoint_answer_fails_with_invalid_inference(runtime, endpoint):
    runtime.put_image(KEY, png_bytes())
    endpoint.enqueue([Answer(body=b'{"predictions": "bicycle"}')])
    result = runtime.run(KEY)
    assert (result.status, result.error) == ("FAILED", "InvalidInferenceError")
    assert len(endpoint.invocations) == 1  # not retried


def test_model_error_fails_without_retry(runtime, endpoint):
    runtime.put_image(KEY, png_bytes())
    endpoint.enqueue([Answer.error(424, "ModelError", "unable to evaluate payload provided")])
    result = runtime.run(KEY)
    assert (result.status, result.error) == ("FAILED", "ModelInvocationError")
    assert len(endpoint.invocations) == 1


def test_each_function_logs_to_its_own_file(runtime, endpoint, lambda_logs):
    runtime.put_image(KEY, png_bytes())
    assert runtime.run(KEY).status == "SUCCEEDED"
    filter_log = (lambda_logs / "FilterLowConfidenceFunction.log").read_text()
    assert '"message":"confidence checked"' in filter_log
    assert '"message":"image classified"' in (lambda_logs / "ClassifyImageFunction.log").read_text()
