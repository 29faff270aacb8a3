"""The decision reaches dispatch: each outcome publishes exactly one event (or none, for a failure) with the
schema of docs/doors.md, through the local EventBridge to a queue; that page's example rule routes them."""

from __future__ import annotations

import json

import boto3
import pytest

from common.settings import staged_dataset_key
from testkit.images import png_bytes
from tests.support import load_event
from workflow.offline.events import CLASSIFIED, EVENT_SOURCE, NEEDS_REVIEW
from workflow.offline.stub_endpoint import Answer
from workflow.offline.sync_execution import start_sync_execution

DETAIL_KEYS = ["bucket", "key", "label", "confidence", "inferences", "model_version", "execution_id"]


@pytest.fixture(autouse=True)
def empty_queue(runtime):
    runtime.events.drain()


def test_a_confident_image_publishes_one_vehicle_classified(runtime, endpoint):
    key = staged_dataset_key("test/event_ok.png")
    runtime.put_image(key, png_bytes(seed=31))
    endpoint.enqueue([Answer.probabilities(0.02, 0.98)])

    result = runtime.run(key)

    (event,) = runtime.events.drain()
    assert (event["source"], event["detail-type"]) == (EVENT_SOURCE, CLASSIFIED)
    assert list(event["detail"]) == DETAIL_KEYS
    assert event["detail"] == {"bucket": "scones-offline", "key": key, "label": "motorcycle",
                               "confidence": 0.98, "inferences": [0.02, 0.98], "model_version": "unversioned",
                               "execution_id": result.execution_arn}
    assert result.execution_arn in event["resources"]  # Step Functions adds the execution and machine ARNs
    assert result.output["body"]["prediction"] == {"label": "motorcycle", "confidence": 0.98}  # output unchanged


def test_a_low_confidence_image_publishes_one_vehicle_needs_review_naming_its_record(runtime, endpoint):
    runtime.put_image(staged_dataset_key("test/event_low.png"), png_bytes(seed=32))
    endpoint.enqueue([Answer.probabilities(0.7, 0.3)])

    result = runtime.run(staged_dataset_key("test/event_low.png"))

    (event,) = runtime.events.drain()
    assert event["detail-type"] == NEEDS_REVIEW
    assert list(event["detail"]) == [*DETAIL_KEYS, "review_key"]
    assert event["detail"]["review_key"] == f"review/{result.name}.json"
    assert f"review/{result.name}.json" in runtime.review_records()
    assert (result.error, json.loads(result.cause)) == ("LowConfidenceError", event["detail"])


def test_a_failed_image_publishes_nothing(runtime, endpoint):
    runtime.put_image(staged_dataset_key("test/event_bad.png"), b"not an image")
    assert runtime.run(staged_dataset_key("test/event_bad.png")).error == "NotAnImageError"
    assert runtime.events.drain() == []


def test_the_express_machine_publishes_the_same_events(runtime, endpoint):
    key = staged_dataset_key("test/event_express.png")
    runtime.put_image(key, png_bytes(seed=33))
    response = start_sync_execution(runtime.express_state_machine_arn, json.dumps(
        {"image_data": "", "s3_bucket": runtime.bucket, "s3_key": key}), "express-event")
    (event,) = runtime.events.drain()
    assert response["status"] == "SUCCEEDED"
    assert (event["detail-type"], event["detail"]["execution_id"]) == (CLASSIFIED, response["executionArn"])


def test_the_readme_rule_routes_confident_motorcycles_only(runtime, endpoint):
    events, sqs = boto3.client("events"), boto3.client("sqs")
    queue = sqs.create_queue(QueueName="dispatch-motorcycles")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="dispatch-motorcycles", EventPattern=json.dumps(load_event("dispatch_rule_pattern.json")))
    events.put_targets(Rule="dispatch-motorcycles", Targets=[{"Id": "q", "Arn": arn}])
    for seed, answer in enumerate([(0.02, 0.98), (0.98, 0.02), (0.3, 0.7)]):
        runtime.put_image(staged_dataset_key(f"test/route_{seed}.png"), png_bytes(seed=40 + seed))
        endpoint.enqueue([Answer.probabilities(*answer)])
        runtime.run(staged_dataset_key(f"test/route_{seed}.png"))
    routed = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["detail"]["key"] for m in routed] == [staged_dataset_key("test/route_0.png")]
