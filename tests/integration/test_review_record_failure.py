"""A low-confidence item whose review record cannot be written fails as ReviewRecordError, not LowConfidenceError.

Before, the execution failed as LowConfidenceError after the filter had emitted its LowConfidence
metric, so the unexpected-failures alarm (ExecutionsFailed minus LowConfidence) netted the lost
record to zero. Now each machine's log group counts executions by their own error name (LowConfidenceError
excluded). The real ASL runs here with a review bucket that does not exist.
"""

from __future__ import annotations

import json
import re

import pytest

from common.servers import BackgroundServer
from common.settings import staged_dataset_key
from testkit.images import png_bytes
from tests.support import HANG_GUARD_S, SCRIPTED_STACK
from tools.cfn import transformed_template
from workflow.offline.runtime import OfflineRuntime
from workflow.offline.stub_endpoint import Answer, ScriptedEndpoint

MISSING_BUCKET = "no-such-review-bucket"


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    endpoint = ScriptedEndpoint(default=Answer.probabilities(0.6, 0.4))
    logs = tmp_path_factory.mktemp("lambda-logs")
    with BackgroundServer(endpoint.app(), name="scripted-endpoint") as server:
        with OfflineRuntime(server.url, lambda_log_dir=logs, trigger=False, parameter_overrides=SCRIPTED_STACK,
                            substitution_overrides={"ReviewBucketName": MISSING_BUCKET}) as runtime:
            key = staged_dataset_key("test/unsure.png")
            runtime.put_image(key, png_bytes())
            yield runtime, runtime.run(key, timeout=HANG_GUARD_S), logs


def test_the_execution_fails_with_its_own_error_name_after_the_retries(refused):
    runtime, result, _ = refused
    assert (result.status, result.error) == ("FAILED", "ReviewRecordError")
    assert result.cause.startswith(f"review/{result.name}.json was not written: ")
    # IAM refuses the write before S3 looks for the bucket: the machine's role may write only the data bucket's review/
    assert "AccessDenied" in result.cause
    assert (f"is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::{MISSING_BUCKET}/review/"
            f"{result.name}.json\"") in result.cause
    history = runtime.history(result.execution_arn)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered[-3:] == ["PrepareReviewRecord", "RecordForReview", "ReviewRecordFailed"]
    record = next(i for i, e in enumerate(history) if e.get("stateEnteredEventDetails", {}).get("name") ==
                  "RecordForReview")
    assert sum(e["type"] == "TaskFailed" for e in history[record:]) == 4  # 1 attempt + 3 retries
    assert runtime.review_records() == {}


def test_the_filter_had_already_counted_it_as_low_confidence(refused):
    _, _, logs = refused
    metrics = [json.loads(line) for line in (logs / "FilterLowConfidenceFunction.log").read_text().splitlines()
               if '"_aws"' in line]
    assert [m["LowConfidence"] for m in metrics] == [[1.0]]


def _log_record(history_event: dict) -> dict:
    """The record Step Functions writes to the state machine's log group for an ExecutionFailed event."""
    details = history_event["executionFailedEventDetails"]
    return {"id": str(history_event["id"]), "type": history_event["type"],
            "details": {"error": details["error"], "cause": details["cause"]}}


def _matches(pattern: str, record: dict) -> bool:
    """CloudWatch Logs' JSON filter syntax, the subset the template uses: `($.a.b = "v")`, `!=`, `&&`, `||`, `()`.

    Each comparison is replaced by its truth value; what is left must be only parentheses and the two operators."""
    def compare(match: re.Match) -> str:
        value: object = record
        for part in match.group(1).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return str((value == match.group(3)) == (match.group(2) == "="))

    body = pattern.strip()
    assert body.startswith("{") and body.endswith("}")
    logic = re.sub(r'\$\.([\w.]+) (=|!=) "([^"]*)"', compare, body[1:-1])
    assert re.fullmatch(r"[\s()]*((True|False)[\s()]*(&&|\|\|)[\s()]*)*(True|False)[\s()]*", logic), logic
    return bool(eval(logic.replace("&&", " and ").replace("||", " or ")))  # noqa: S307 - only True/False/and/or


def test_every_machine_counts_its_unexpected_failures_and_the_alarm_watches_that_count(refused):
    runtime, result, _ = refused
    cfn = transformed_template()
    filters = {r["Properties"]["LogGroupName"]["Ref"]: r["Properties"] for r in cfn["Resources"].values()
               if r["Type"] == "AWS::Logs::MetricFilter"}
    assert sorted(filters) == ["BatchStateMachineLogGroup", "ExpressStateMachineLogGroup", "StateMachineLogGroup"]
    for props in filters.values():
        assert props["MetricTransformations"] == [{"MetricNamespace": "SconesUnlimited/ImageClassification",
                                                   "MetricName": "UnexpectedFailures", "MetricValue": "1",
                                                   "Unit": "Count"}]
    (pattern,) = {props["FilterPattern"] for props in filters.values()}
    failed = _log_record(next(e for e in runtime.history(result.execution_arn) if e["type"] == "ExecutionFailed"))
    assert _matches(pattern, failed)  # this execution: ReviewRecordError, after LowConfidence was emitted
    assert not _matches(pattern, dict(failed, details={"error": "LowConfidenceError", "cause": "x"}))
    assert _matches(pattern, dict(failed, details={"error": "NotAnImageError", "cause": "x"}))
    assert _matches(pattern, dict(failed, details={"error": "States.TaskFailed", "cause": "PutEvents"}))
    assert _matches(pattern, {"type": "ExecutionTimedOut", "details": {}})
    assert not _matches(pattern, {"type": "ExecutionSucceeded", "details": {"output": "{}"}})

    alarm = cfn["Resources"]["UnexpectedFailuresAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["ComparisonOperator"],
            alarm["Threshold"]) == ("SconesUnlimited/ImageClassification", "UnexpectedFailures", "Sum",
                                    "GreaterThanThreshold", 0)
    assert "Dimensions" not in alarm  # the three filters publish one metric, without dimensions
