"""workflow/offline/moto_fidelity.py: moto's interpreter, patched, behaves as AWS where the batch depends on it."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.support import wait_until
from workflow.offline.moto_fidelity import faithful_interpreter
from workflow.offline.moto_tuning import tuned_interpreter

ROLE = "arn:aws:iam::123456789012:role/r"
LIST_PREFIX = {
    "StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                                      "Parameters": {"Bucket": "fidelity", "Prefix.$": "$.prefix",
                                                     "MaxKeys": 2}},
        "ItemSelector": {"key.$": "$$.Map.Item.Value.Key", "item.$": "$$.Map.Item.Value"},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        "End": True}}}


@pytest.fixture
def aws():
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), tuned_interpreter(), \
            faithful_interpreter():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="fidelity")
        yield s3, boto3.client("stepfunctions", region_name="us-east-1")


def run(sfn, definition: dict, execution_input: dict, name: str = "m") -> dict:
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="e1", input=json.dumps(execution_input))["executionArn"]
    return wait_until(lambda: (description := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING"
                      and description, "the execution to end")


def test_the_item_reader_reads_every_page_with_aws_item_shapes(aws):
    s3, sfn = aws
    for i in range(5):  # pages of 2 keys (MaxKeys): moto alone read only the first page (1,000 keys by default)
        s3.put_object(Bucket="fidelity", Key=f"in/{i:04d}.png", Body=b"x" * (i % 3))

    description = run(sfn, LIST_PREFIX, {"prefix": "in/"})

    items = json.loads(description["output"])
    assert [item["key"] for item in items] == [f"in/{i:04d}.png" for i in range(5)]
    first = items[0]["item"]
    assert sorted(first) == ["Etag", "Key", "LastModified", "Size", "StorageClass"]
    assert isinstance(first["LastModified"], int) and first["Size"] == 0


def test_an_empty_prefix_has_no_items(aws):
    _, sfn = aws
    description = run(sfn, LIST_PREFIX, {"prefix": "nothing/"})
    assert (description["status"], json.loads(description["output"])) == ("SUCCEEDED", [])


def test_start_execution_sync2_starts_the_child_and_returns_its_parsed_output(aws):
    _, sfn = aws
    child = sfn.create_state_machine(name="child", type="EXPRESS", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"},
                                          "End": True}}}))["stateMachineArn"]
    parent = {"StartAt": "Run", "States": {"Run": {
        "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": child, "Input": {"n.$": "$.n"}, "Name": "child-1"}, "End": True}}}

    description = run(sfn, parent, {"n": 21}, name="parent")

    output = json.loads(description["output"])
    assert (description["status"], output["Status"], output["Output"], output["Input"]) == (
        "SUCCEEDED", "SUCCEEDED", {"doubled": 42}, {"n": 21})
    assert isinstance(output["StartDate"], int)  # epoch milliseconds, not a datetime moto cannot serialise


def map_with_failures(**tolerance: object) -> dict:
    """A Distributed Map over $.items whose items with `fail` end in a Fail state; its error is caught."""
    return {"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, **tolerance,
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                   "StartAt": "Which", "States": {
                                       "Which": {"Type": "Choice", "Default": "Fine", "Choices": [
                                           {"Variable": "$.fail", "BooleanEquals": True, "Next": "Broke"}]},
                                       "Broke": {"Type": "Fail", "Error": "ItemBroke", "Cause": "on purpose"},
                                       "Fine": {"Type": "Pass", "End": True}}},
                 "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.map_error", "Next": "Caught"}],
                 "End": True},
        "Caught": {"Type": "Pass", "End": True}}}


@pytest.mark.parametrize(("tolerance", "failing", "exceeded"), [
    ({"ToleratedFailurePercentage": 10.0}, 1, False),  # 1 of 10 is 10%: not more than 10% (moto parses floats only)
    ({"ToleratedFailurePercentage": 10.0}, 2, True),
    ({"ToleratedFailurePercentagePath": "$.pct"}, 2, True),
    ({"ToleratedFailureCount": 2}, 2, False),
    ({"ToleratedFailureCount": 2}, 3, True),
    ({}, 1, True),  # neither set: AWS tolerates no failure
    ({}, 0, False),
])
def test_a_distributed_map_fails_past_its_tolerated_failures_as_on_aws(aws, tolerance, failing, exceeded):
    _, sfn = aws
    items = [{"fail": index < failing} for index in range(10)]
    description = run(sfn, map_with_failures(**tolerance), {"items": items, "pct": 10})
    output = json.loads(description["output"])
    assert description["status"] == "SUCCEEDED"
    if exceeded:
        assert output["map_error"] == {"Error": "States.ExceedToleratedFailureThreshold",
                                       "Cause": "The specified tolerated failure threshold was exceeded"}
    else:
        assert "map_error" not in output


def test_past_the_threshold_no_further_item_is_started(aws):
    _, sfn = aws
    items = [{"fail": True}] + [{"fail": False}] * 4
    description = run(sfn, map_with_failures(), {"items": items})
    assert json.loads(description["output"])["map_error"]["Error"] == "States.ExceedToleratedFailureThreshold"
    (map_run,) = sfn.list_map_runs(executionArn=description["executionArn"])["mapRuns"]
    counts = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])["itemCounts"]
    assert (counts["total"], counts["failed"], counts["succeeded"]) == (1, 1, 0)  # MaxConcurrency 1: one started
