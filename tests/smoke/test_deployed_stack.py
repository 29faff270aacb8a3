"""Does the deployed stack work? The same checks against a stack (`make smoke STACK=<name>`) and, in CI, against the
offline runtime: the trigger is enabled (`workflow enable-trigger`'s step) and an upload to incoming/ is decided and
published, the API answers a SigV4-signed request, a small batch accounts for each object (images decided, a text file
failed as NotAnImageError), and the endpoint serves the model the gate promoted (its sha256). Each test deletes what
it made: its objects, its batch's results, the review/ and audit/ records about its images."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from common import settings
from data_prep.training.sagemaker_deploy import served_sha256
from testkit.images import png_bytes
from workflow.aws_ops import enable_eventbridge
from workflow.batch import RESULTS_PREFIX, classify_prefix
from workflow.stepfunctions import wait_for_execution

pytestmark = pytest.mark.smoke
DECIDED = {"SUCCEEDED", "FAILED"}


def execution_for(sfn, state_machine_arn: str, key: str, deadline: float) -> str:
    """The execution the S3 trigger started for `key` (its input names the key)."""
    while time.monotonic() < deadline:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn,
                                                                   PaginationConfig={"MaxItems": 200}):
            for item in page["executions"]:
                described = sfn.describe_execution(executionArn=item["executionArn"])
                if json.loads(described.get("input") or "{}").get("s3_key") == key:
                    return str(item["executionArn"])
        time.sleep(1.0)
    raise AssertionError(f"no execution started for {key}")


def fresh_seed() -> int:
    """A seed of its own per run: two smoke runs never upload the same bytes (uploads/ is keyed by content)."""
    return uuid.uuid4().int % 2**32


def decide_an_upload(target, created) -> str:
    """`workflow enable-trigger`'s step (S3 -> EventBridge), then an image to incoming/: its execution's ARN."""
    s3 = target.client("s3")
    enable_eventbridge(s3, target.bucket)  # idempotent; without it, on AWS, no upload starts an execution
    key = created.put(f"incoming/smoke-{uuid.uuid4().hex}.png", png_bytes(seed=fresh_seed()))
    sfn = target.client("stepfunctions")
    return execution_for(sfn, target.state_machine_arn, key, time.monotonic() + target.timeout)


def test_an_upload_to_incoming_is_decided_and_its_event_published(target, created):
    sfn = target.client("stepfunctions")
    arn = decide_an_upload(target, created)
    result = wait_for_execution(sfn, arn, timeout=target.timeout, poll_interval=0.5)
    assert result.status in DECIDED
    if result.status == "FAILED":  # sent to review: the one failure that is a decision
        assert result.error == "LowConfidenceError"
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    published = [event["taskSucceededEventDetails"] for event in history if event["type"] == "TaskSucceeded"
                 and event["taskSucceededEventDetails"]["resourceType"] == "events"]
    assert published and all(json.loads(item["output"])["FailedEntryCount"] == 0 for item in published)


def test_the_api_answers_a_sigv4_signed_request(target, created):
    body = png_bytes(seed=fresh_seed())
    created.keys.add(f"uploads/{hashlib.sha256(body).hexdigest()}.png")  # serialize-image stages it by content
    created.images.add(f"uploads/{hashlib.sha256(body).hexdigest()}.png")
    request = AWSRequest(method="POST", url=target.classifications_url, data=body,
                         headers={"Content-Type": "image/png"})
    SigV4Auth(target.session.get_credentials(), "execute-api", target.session.region_name).add_auth(request)
    prepared = urllib.request.Request(target.classifications_url, data=body, method="POST",
                                      headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=target.timeout) as response:  # noqa: S310 - the stack's URL
            status, answer = response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        status, answer = error.code, json.loads(error.read() or b"{}")
    assert status in {200, 202}, answer  # 202: low confidence, recorded for review
    assert len(answer["inferences"]) >= 2 and answer["label"] and abs(sum(answer["inferences"]) - 1) < 1e-3


def test_a_small_batch_accounts_for_every_object(target, created):
    prefix = f"{target.batch_prefix}smoke-{uuid.uuid4().hex}/"
    created.prefixes.add(prefix)
    images = [created.put(f"{prefix}{n}.png", png_bytes(seed=fresh_seed())) for n in range(2)]
    text = created.put(f"{prefix}notes.txt", b"not pixels")
    s3 = target.client("s3")
    summary = classify_prefix(target.client("stepfunctions"), s3, target.batch_state_machine_arn, target.bucket,
                              prefix, results_bucket=target.bucket, timeout=target.timeout, poll_interval=1.0)
    created.prefixes.add(f"{RESULTS_PREFIX}{summary['execution_arn'].rsplit(':', 1)[1]}/")
    assert (summary["status"], summary["complete"], summary["objects"], summary["prefix"]) == (
        "SUCCEEDED", True, 3, prefix), summary
    assert summary["failed"] == {"count": 1, "keys": {text: "NotAnImageError"}}
    decided = sorted(summary["classified"]["keys"] + summary["review"]["keys"])
    assert decided == sorted(images)
    assert sum(summary["classified"]["labels"].values()) == summary["classified"]["count"]
    assert set(summary["classified"]["labels"]) <= set(settings.class_names())
    assert summary["summary_uri"].startswith(f"s3://{target.bucket}/{RESULTS_PREFIX}")


def test_what_a_smoke_test_made_is_deleted(target, created):
    """The cleanup every test ends with: the image, and the records the workflow wrote about it, are gone."""
    sfn = target.client("stepfunctions")
    arn = decide_an_upload(target, created)
    (image,) = created.images
    result = wait_for_execution(sfn, arn, timeout=target.timeout, poll_interval=0.5)
    records = created.records()
    if result.status == "FAILED":  # sent to review: the record is named by the execution
        assert f"review/{arn.rsplit(':', 1)[1]}.json" in records
    made = created.remaining()
    assert made == sorted({image, *records})
    assert created.delete() == made
    assert created.remaining() == []


def test_the_endpoint_serves_the_model_the_gate_promoted(target):
    served = served_sha256(target.client("sagemaker"), target.endpoint_name)
    if target.expected_sha256 is None:
        pytest.skip("no gate named: `make smoke STACK=<name> GATE=out/gate.json` checks the served sha256")
    assert served == {"AllTraffic": target.expected_sha256}
    answer = target.client("sagemaker-runtime").invoke_endpoint(EndpointName=target.endpoint_name,
                                                                 ContentType="image/png", Body=png_bytes(seed=9))
    probabilities = json.loads(answer["Body"].read())
    assert len(probabilities) >= 2 and abs(sum(probabilities) - 1) < 1e-3
