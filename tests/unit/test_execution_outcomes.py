"""An execution's outcome is what Step Functions says (status, error, cause); our own failures are not outcomes."""

from __future__ import annotations

import json

import pytest

from workflow.executions import Outcome, outcome_of, run_all
from workflow.stepfunctions import ExecutionResult

ARN = "arn:aws:states:us-east-1:123456789012:execution:ImageClassificationStateMachine:e-1"


def ended(status: str, *, error: str | None = None, cause: str | None = None, output=None) -> ExecutionResult:
    return ExecutionResult(ARN, "e-1", status, {"s3_key": "test/a.png"}, output, error, cause, 1.5)


def test_an_item_sent_to_review_takes_the_models_answer_from_the_executions_cause():
    decision = {"bucket": "b", "key": "test/a.png", "label": "motorcycle", "confidence": 0.61,
                "inferences": [0.39, 0.61], "review_key": "review/e-1.json"}
    outcome = outcome_of(ended("FAILED", error="LowConfidenceError", cause=json.dumps(decision)))
    assert outcome == Outcome("test/a.png", "review", "LowConfidenceError", "motorcycle", 0.61, 1.5)


@pytest.mark.parametrize("cause", [None, "", "not json", json.dumps(json.dumps({"label": "bicycle"})), "[0.6, 0.4]",
                                   json.dumps({"label": 3, "confidence": "high"})],
                         ids=["none", "empty", "text", "a JSON string", "a list", "wrong types"])
def test_a_cause_of_another_shape_is_still_review_with_the_answer_unknown(cause):
    outcome = outcome_of(ended("FAILED", error="LowConfidenceError", cause=cause))
    assert (outcome.status, outcome.error, outcome.predicted, outcome.confidence) == (
        "review", "LowConfidenceError", None, None)


@pytest.mark.parametrize("result,expected", [
    (ended("SUCCEEDED", output={"body": {"prediction": {"label": "bicycle", "confidence": 0.98}}}),
     ("succeeded", None, "bicycle")),
    (ended("SUCCEEDED", output={"statusCode": 200}), ("succeeded", None, None)),
    (ended("FAILED", error="NotAnImageError", cause="{}"), ("failed", "NotAnImageError", None)),
    (ended("TIMED_OUT"), ("failed", "TIMED_OUT", None)),
    (ended("ABORTED"), ("aborted", "ExecutionStopped", None)),
], ids=["succeeded", "succeeded, output of another shape", "failed by name", "timed out", "aborted"])
def test_the_status_and_error_decide_the_outcome(result, expected):
    outcome = outcome_of(result)
    assert (outcome.status, outcome.error, outcome.predicted) == expected


def test_a_failure_to_watch_an_execution_stops_the_run_and_is_raised_not_counted():
    started: list[str] = []

    def run_one(key: str) -> Outcome:
        started.append(key)
        if key == "k2":
            raise KeyError("body")  # a bug (or an AWS refusal): never an execution's "failed KeyError"
        return Outcome(key, "succeeded", None, "bicycle", 0.99, 0.1)

    with pytest.raises(KeyError, match="body"):
        run_all([f"k{i}" for i in range(1, 6)], run_one, concurrency=1)
    assert started == ["k1", "k2"]  # no execution starts after the one that could not be watched


def test_every_key_yields_one_outcome_and_the_verdict_counts_the_unexpected():
    statuses = {"a": "succeeded", "b": "review", "c": "failed", "d": "aborted", "e": "failed"}
    errors = {"c": "NotAnImageError", "d": "ExecutionStopped", "e": "EndpointUnavailableError"}
    summary = run_all(list(statuses), lambda key: Outcome(key, statuses[key], errors.get(key), None, None, 0.2),
                      concurrency=3)
    assert [outcome.key for outcome in summary.outcomes] == list(statuses)
    assert summary.unexpected == 3
    assert summary.verdict() == ("FAILED: 3 of 5 executions failed unexpectedly (EndpointUnavailableError 1, "
                                 "NotAnImageError 1; 1 aborted)")
    fine = run_all(["a", "b"], lambda key: Outcome(key, statuses[key], None, None, None, 0.2), concurrency=2)
    assert (fine.unexpected, fine.verdict()) == (0, "OK: none of the 2 executions failed (1 succeeded, 1 sent to "
                                                    "review)")


@pytest.mark.parametrize("code,status", [("403", 403), ("SlowDown", 503)])
def test_a_refused_look_for_a_failed_batchs_summary_is_not_no_summary(code, status):
    import boto3
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    from workflow.batch import summary_uri_after_failure

    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stubber:
        stubber.add_client_error("head_object", service_error_code=code, http_status_code=status)
        stubber.add_client_error("head_object", service_error_code="404", http_status_code=404)
        with pytest.raises(ClientError, match=code):
            summary_uri_after_failure(s3, "data", "batch-1")
        assert summary_uri_after_failure(s3, "data", "batch-1") is None  # not there: no summary


REPORT = {"state": "healthy", "reasons": ["10.0% of inferences fell below the 0.93 confidence threshold (sent to "
                                          "review); the limit is 30%, the template's LowConfidenceAlarmRate"],
          "notes": ["Drift not judged."], "recommendation": None}


def summary_of(*statuses: str):
    from workflow.executions import Summary

    errors = {"failed": "ImageTooLargeError", "review": "LowConfidenceError", "aborted": "States.Stopped"}
    return Summary([Outcome(f"test/{i}.png", status, errors.get(status), None, None, 1.0)
                    for i, status in enumerate(statuses)], elapsed_s=1.0)


def test_the_runs_verdict_is_the_reports_unless_an_execution_failed_unexpectedly():
    from workflow.offline_run import run_verdict

    assert run_verdict(REPORT, summary_of("succeeded", "review")) == REPORT
    failed = summary_of("succeeded", "failed", "aborted")
    line = "FAILED: 2 of 3 executions failed unexpectedly (ImageTooLargeError 1; 1 aborted)"
    assert run_verdict(REPORT, failed) == {**REPORT, "state": "degraded", "reasons": [line]}  # not "healthy"
    degraded = {**REPORT, "state": "degraded", "reasons": ["4.0% of automatic decisions were wrong"]}
    assert run_verdict(degraded, failed)["reasons"] == [line, "4.0% of automatic decisions were wrong"]
    drift = {**REPORT, "state": "drift", "reasons": ["brightness drifted"]}
    assert run_verdict(drift, failed) == {**drift, "reasons": [line, "brightness drifted"]}  # drift outranks
    no_data = {**REPORT, "state": "no data", "reasons": ["no valid inferences in the capture (0 malformed records)"]}
    assert run_verdict(no_data, failed)["state"] == "degraded"


def test_a_batch_says_ok_or_failed_in_the_same_words_as_start_executions():
    from workflow.batch import batch_verdict

    def batch(failed: dict[str, str]) -> dict:
        return {"objects": 4 + len(failed), "classified": {"count": 3}, "review": {"count": 1},
                "failed": {"count": len(failed), "keys": failed}}

    assert batch_verdict(batch({})) == (0, "OK: none of the 4 objects failed (3 classified, 1 sent to review)")
    assert batch_verdict(batch({"a.txt": "NotAnImageError", "b.txt": "NotAnImageError", "c": "NotStarted"})) == (
        3, "FAILED: 3 of 7 objects failed unexpectedly (NotAnImageError 2, NotStarted 1)")
