"""The offline S3 trigger delivers as EventBridge does: exact keys, the target's RetryPolicy, a dead-letter queue.

Faults are real: a Step Functions endpoint on 127.0.0.1 that throttles, a port nothing listens on, a
template whose placeholders make invalid JSON. Nothing loops: every event ends started or dead-lettered.
"""

from __future__ import annotations

import datetime
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from common.settings import OFFLINE_REGION
from testkit.images import png_bytes
from tests.support import wait_until
from workflow.offline.trigger import Trigger, forwarder_client

KEYS = ['incoming/say "cheese".png', "incoming/back\\slash.png", "incoming/red flower.png", "incoming/a+b.png",
        "incoming/vélo 🚲.png", "incoming/50% off.png"]


def until(condition):
    return wait_until(condition, "the trigger")


class StepFunctionsStandIn:
    """A Step Functions endpoint on 127.0.0.1 that throttles the first `throttles` StartExecution calls."""

    def __init__(self, throttles: int) -> None:
        self.throttles, self.requests = throttles, []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                stand_in.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                if len(stand_in.requests) <= stand_in.throttles:
                    status, body = 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
                else:
                    status, body = 200, {"executionArn": f"arn:aws:states:us-east-1:123456789012:execution:m:"
                                                         f"{len(stand_in.requests)}", "startDate": 1.7e9}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                if status != 200:
                    self.send_header("x-amzn-ErrorType", body["__type"])
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed again: connections are refused


def rule(prefix: str, *, template: str = '{"image_data": "", "s3_bucket": <bucket>, "s3_key": <key>}',
         retries: int = 10, max_age: int = 86400, dead_letters: bool = True) -> dict:
    spec = {
        "Pattern": {"source": ["aws.s3"], "detail-type": ["Object Created"],
                    "detail": {"object": {"key": [{"prefix": prefix}]}}},
        "InputTransformer": {"InputPathsMap": {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"},
                             "InputTemplate": template},
        "RetryPolicy": {"MaximumRetryAttempts": retries, "MaximumEventAgeInSeconds": max_age},
    }
    if dead_letters:
        spec["DeadLetterConfig"] = {"Type": "SQS"}
    return spec


@pytest.fixture
def extra_trigger(runtime):
    """A second trigger beside the template's, on the same moto EventBridge, for rules the tests write."""
    made = []

    def make(sfn=None) -> Trigger:
        trigger = Trigger(sfn or forwarder_client("stepfunctions"), boto3.client("sqs", region_name=OFFLINE_REGION),
                          runtime.state_machine_arn, base_delay_s=0.02, max_delay_s=0.1)
        made.append(trigger)
        return trigger

    yield make
    for trigger in made:
        trigger.stop()


def test_uploads_with_any_key_start_executions_with_the_exact_key(runtime, endpoint):
    already = len(runtime.triggered_executions)
    for key in KEYS:
        runtime.put_image(key, png_bytes())
    started = until(lambda: runtime.triggered_executions[already:] if len(
        runtime.triggered_executions) >= already + len(KEYS) else None)
    results = [runtime.wait(arn) for arn in started]
    assert sorted(r.input["s3_key"] for r in results) == sorted(KEYS)
    assert {r.status for r in results} == {"SUCCEEDED"}
    assert {r.output["body"]["s3_key"] for r in results} == set(KEYS)
    assert runtime.dead_letters() == []


def test_a_template_that_makes_invalid_json_dead_letters_the_event_at_once(runtime, extra_trigger):
    trigger = extra_trigger()
    events = boto3.client("events", region_name=OFFLINE_REGION)
    trigger.add_rule(events, "QuotedPlaceholders", rule(
        "quoted/", template='{"image_data": "", "s3_bucket": "<bucket>", "s3_key": "<key>"}'))
    runtime.put_image('quoted/say "cheese".png', png_bytes())
    runtime.put_image("quoted/plain.png", png_bytes())

    (letter,) = until(trigger.dead_letters)
    assert letter.event["detail"]["object"]["key"] == 'quoted/say "cheese".png'
    assert letter.attributes == {
        "RULE_ARN": "arn:aws:events:us-east-1:123456789012:rule/QuotedPlaceholders",
        "TARGET_ARN": runtime.state_machine_arn, "ERROR_CODE": "InvalidExecutionInput",
        "ERROR_MESSAGE": letter.attributes["ERROR_MESSAGE"], "RETRY_ATTEMPTS": "0"}
    assert "delimiter" in letter.attributes["ERROR_MESSAGE"]  # what the JSON parser found wrong
    (started,) = until(lambda: trigger.executions)  # the plain key still goes through that template
    assert runtime.wait(started).input["s3_key"] == "quoted/plain.png"
    until(trigger.settled)  # every event it matched has ended: nothing is left to loop
    assert len(trigger.dead_letters()) == 1 and len(trigger.executions) == 1


def test_throttling_is_retried_by_the_retry_policy_then_dead_lettered(runtime, extra_trigger):
    stand_in = StepFunctionsStandIn(throttles=100)
    try:
        trigger = extra_trigger(forwarder_client("stepfunctions", endpoint_url=stand_in.url))
        trigger.add_rule(boto3.client("events", region_name=OFFLINE_REGION), "Throttled", rule("throttled/", retries=3))
        runtime.put_image("throttled/a b.png", png_bytes())
        (letter,) = until(trigger.dead_letters)
    finally:
        stand_in.close()
    assert len(stand_in.requests) == 4  # the first attempt and MaximumRetryAttempts retries, no more
    assert json.loads(stand_in.requests[0]["input"])["s3_key"] == "throttled/a b.png"
    assert {k: letter.attributes[k] for k in ("ERROR_CODE", "RETRY_ATTEMPTS", "EXHAUSTED_RETRY_CONDITION")} == {
        "ERROR_CODE": "ThrottlingException", "RETRY_ATTEMPTS": "3", "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts"}
    assert trigger.executions == []


def test_a_retried_delivery_that_succeeds_is_delivered_once(runtime, extra_trigger):
    stand_in = StepFunctionsStandIn(throttles=2)
    try:
        trigger = extra_trigger(forwarder_client("stepfunctions", endpoint_url=stand_in.url))
        trigger.add_rule(boto3.client("events", region_name=OFFLINE_REGION), "Recovers", rule("recovers/", retries=3))
        runtime.put_image("recovers/x.png", png_bytes())
        started = until(lambda: trigger.executions)
    finally:
        stand_in.close()
    assert started == ["arn:aws:states:us-east-1:123456789012:execution:m:3"]
    assert len(stand_in.requests) == 3 and trigger.dead_letters() == []


def test_an_event_older_than_the_maximum_age_is_not_retried_again(runtime, extra_trigger):
    trigger = extra_trigger(forwarder_client("stepfunctions", endpoint_url=free_port_url()))
    forwarder = trigger.add_rule(boto3.client("events", region_name=OFFLINE_REGION), "Aged",
                                 rule("never-uploaded/", max_age=60))
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=59.99)
    event = {"source": "aws.s3", "time": old.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
             "detail": {"bucket": {"name": runtime.bucket}, "object": {"key": "never-uploaded/x.png"}}}
    trigger.sqs.send_message(QueueUrl=forwarder.queue_url, MessageBody=json.dumps(event))
    (letter,) = until(trigger.dead_letters)
    assert letter.event == event
    assert (letter.attributes["ERROR_CODE"], letter.attributes["RETRY_ATTEMPTS"],
            letter.attributes["EXHAUSTED_RETRY_CONDITION"]) == (
        "EndpointConnectionError", "0", "MaximumEventAgeInSeconds")


def test_without_a_dead_letter_queue_an_undelivered_event_is_dropped_and_counted(runtime, extra_trigger):
    trigger = extra_trigger(forwarder_client("stepfunctions", endpoint_url=free_port_url()))
    trigger.add_rule(boto3.client("events", region_name=OFFLINE_REGION), "NoQueue",
                     rule("dropped/", retries=1, dead_letters=False))
    runtime.put_image("dropped/x.png", png_bytes())
    (dropped,) = until(lambda: trigger.dropped)
    assert dropped.attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert dropped.attributes["RETRY_ATTEMPTS"] == "1"


def test_the_template_rule_has_its_dead_letter_queue_offline(runtime):
    (name, url), = runtime.dead_letter_queues.items()
    assert name == "ImageClassificationStateMachineIncomingImage"
    assert url.endswith("/IncomingImageDeadLetterQueue")  # the template's own queue, its Arn passed to the rule
