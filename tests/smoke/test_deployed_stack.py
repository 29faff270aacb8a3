"""Does the deployed stack work? The same checks against a stack (`make smoke STACK=<name>`) and, in CI, against the
offline runtime: an upload to incoming/ is decided and published, the API answers a SigV4-signed request, a small
batch classifies a prefix, and the endpoint serves the model the gate promoted (its sha256)."""

from __future__ import annotations

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
from workflow.batch import classify_prefix
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


def test_an_upload_to_incoming_is_decided_and_its_event_published(target):
    key = f"incoming/smoke-{uuid.uuid4().hex}.png"
    target.client("s3").put_object(Bucket=target.bucket, Key=key, Body=png_bytes(seed=7))
    sfn = target.client("stepfunctions")
    arn = execution_for(sfn, target.state_machine_arn, key, time.monotonic() + target.timeout)
    result = wait_for_execution(sfn, arn, timeout=target.timeout, poll_interval=0.5)
    assert result.status in DECIDED
    if result.status == "FAILED":  # sent to review: the one failure that is a decision
        assert result.error == "LowConfidenceError"
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    published = [event["taskSucceededEventDetails"] for event in history if event["type"] == "TaskSucceeded"
                 and event["taskSucceededEventDetails"]["resourceType"] == "events"]
    assert published and all(json.loads(item["output"])["FailedEntryCount"] == 0 for item in published)


def test_the_api_answers_a_sigv4_signed_request(target):
    body = png_bytes(seed=8)
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


def test_a_small_batch_classifies_a_prefix(target):
    prefix = f"{settings.batch_prefix()}smoke/{uuid.uuid4().hex}/"  # the batch role lists nothing else
    s3 = target.client("s3")
    for seed in range(3):
        s3.put_object(Bucket=target.bucket, Key=f"{prefix}{seed}.png", Body=png_bytes(seed=seed))
    summary = classify_prefix(target.client("stepfunctions"), s3, target.batch_state_machine_arn, target.bucket,
                              prefix, results_bucket=target.bucket, timeout=target.timeout, poll_interval=1.0)
    assert summary["objects"] == 3, summary


def test_the_endpoint_serves_the_model_the_gate_promoted(target):
    served = served_sha256(target.client("sagemaker"), target.endpoint_name)
    if target.expected_sha256 is None:
        pytest.skip("no gate named: `make smoke STACK=<name> GATE=out/gate.json` checks the served sha256")
    assert served == {"AllTraffic": target.expected_sha256}
    answer = target.client("sagemaker-runtime").invoke_endpoint(EndpointName=target.endpoint_name,
                                                                 ContentType="image/png", Body=png_bytes(seed=9))
    probabilities = json.loads(answer["Body"].read())
    assert len(probabilities) >= 2 and abs(sum(probabilities) - 1) < 1e-3
