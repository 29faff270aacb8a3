"""A low-confidence item whose review record cannot be written fails as ReviewRecordError, not LowConfidenceError.

Before, the execution failed as LowConfidenceError after the filter had emitted its LowConfidence
metric, so the unexpected-failures alarm (ExecutionsFailed minus LowConfidence) netted the lost
record to zero. The real ASL runs here with a review bucket that does not exist.
"""

from __future__ import annotations

import json
import re

import pytest

from common.servers import BackgroundServer
from testkit.images import png_bytes
from tools.cfn import transformed_template
from workflow.offline.runtime import OfflineRuntime
from workflow.offline.stub_endpoint import Answer, ScriptedEndpoint

MISSING_BUCKET = "no-such-review-bucket"


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    endpoint = ScriptedEndpoint(default=Answer.probabilities(0.6, 0.4))
    logs = tmp_path_factory.mktemp("lambda-logs")
    with BackgroundServer(endpoint.app(), name="scripted-endpoint") as server:
        with OfflineRuntime(server.url, lambda_log_dir=logs, trigger=False,
                            substitution_overrides={"ReviewBucketName": MISSING_BUCKET}) as runtime:
            runtime.put_image("test/unsure.png", png_bytes())
            yield runtime, runtime.run("test/unsure.png", timeout=30), logs


def test_the_execution_fails_with_its_own_error_name_after_the_retries(refused):
    runtime, result, _ = refused
    assert (result.status, result.error) == ("FAILED", "ReviewRecordError")
    assert result.cause.startswith(f"review/{result.name}.json was not written: ")
    assert "NoSuchBucket" in result.cause
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
    """CloudWatch Logs' JSON filter syntax, the subset the template uses: `{ ($.a.b = "v") && ($.c = "w") }`."""
    terms = re.findall(r'\(\$\.([\w.]+) = "([^"]*)"\)', pattern)
    assert pattern.replace(" ", "") == "{" + "&&".join(f'($.{p}="{v}")' for p, v in terms) + "}"
    values = []
    for path, _ in terms:
        value = record
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values.append(value)
    return all(value == expected for value, (_, expected) in zip(values, terms, strict=True))


def test_a_metric_filter_counts_it_and_the_alarm_adds_it_back(refused):
    runtime, result, _ = refused
    cfn = transformed_template()
    (name, metric_filter), = ((n, r) for n, r in cfn["Resources"].items() if r["Type"] == "AWS::Logs::MetricFilter")
    props = metric_filter["Properties"]
    assert props["LogGroupName"] == {"Ref": "StateMachineLogGroup"}
    assert props["MetricTransformations"] == [{"MetricNamespace": "SconesUnlimited/ImageClassification",
                                               "MetricName": "ReviewRecordFailures", "MetricValue": "1",
                                               "Unit": "Count"}]
    failed = next(e for e in runtime.history(result.execution_arn) if e["type"] == "ExecutionFailed")
    assert _matches(props["FilterPattern"], _log_record(failed))
    low_confidence = dict(_log_record(failed), details={"error": "LowConfidenceError", "cause": "x"})
    assert not _matches(props["FilterPattern"], low_confidence)

    alarm = cfn["Resources"]["UnexpectedFailuresAlarm"]["Properties"]["Metrics"]
    unrecorded = next(m for m in alarm if m["Id"] == "unrecorded")["MetricStat"]
    assert (unrecorded["Metric"]["Namespace"], unrecorded["Metric"]["MetricName"], unrecorded["Stat"]) == (
        "SconesUnlimited/ImageClassification", "ReviewRecordFailures", "Sum")
    # this execution counts once in each of failed, low and unrecorded: 1 - 1 + 1 = 1 > 0, the alarm fires
    assert alarm[-1]["Expression"] == "FILL(failed, 0) - FILL(low, 0) + FILL(unrecorded, 0)"
