"""The batch machine's Map-failure path, end to end offline: the real batch ASL in the offline runtime, a batch
whose objects cannot run (their per-image machine cannot be started) past ToleratedFailurePercentage."""

from __future__ import annotations

import json

import pytest

from testkit.images import png_bytes
from workflow.batch import classify_prefix, read_summary
from workflow.offline.runtime import OfflineRuntime

MISSING_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:deleted-per-image-machine"


@pytest.fixture(scope="module")
def broken_runtime(endpoint, lambda_logs):
    """The stack with the batch pointing at a per-image machine that does not exist: no child can start."""
    overrides = {"ImageClassificationExpressStateMachineArn": MISSING_MACHINE}
    with OfflineRuntime(endpoint.url, lambda_log_dir=lambda_logs, substitution_overrides=overrides) as offline:
        yield offline


def test_a_batch_past_its_tolerated_failures_fails_with_our_error_name_and_the_maps_in_the_cause(broken_runtime):
    runtime = broken_runtime
    keys = [f"batch/unrunnable/{index}.png" for index in range(4)]
    for index, key in enumerate(keys):
        runtime.put_image(key, png_bytes(seed=900 + index))

    summary = classify_prefix(runtime.sfn, runtime.s3, runtime.batch_state_machine_arn, runtime.bucket,
                              "batch/unrunnable/", results_bucket=runtime.bucket, poll_interval=0.05, timeout=120)

    execution = runtime.sfn.describe_execution(executionArn=summary["execution_arn"])
    assert (execution["status"], execution["error"]) == ("FAILED", "BatchFailedError")
    assert json.loads(execution["cause"]) == {"Error": "States.ExceedToleratedFailureThreshold",
                                              "Cause": "The specified tolerated failure threshold was exceeded"}
    assert (summary["status"], summary["complete"], summary["error"]) == (
        "FAILED", False, "States.ExceedToleratedFailureThreshold")
    assert summary["objects"] == 4 and summary["failed"]["count"] == 4
    assert read_summary(runtime.s3, summary["summary_uri"])["error"] == "States.ExceedToleratedFailureThreshold"
    history = runtime.history(summary["execution_arn"])
    (map_run_failed,) = [event for event in history if event["type"] == "MapRunFailed"]
    assert map_run_failed["mapRunFailedEventDetails"]["error"] == "States.ExceedToleratedFailureThreshold"
