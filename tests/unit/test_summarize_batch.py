"""summarize-batch against moto S3, on result files in the format the Distributed Map's ResultWriter writes."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from functions.summarize_batch import app

BUCKET = "scones-data"
RUN = "batch-results/b1/0b8e1c4e-run"


@pytest.fixture
def s3(monkeypatch):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        monkeypatch.setattr(app, "s3", client)
        yield client


def succeeded(output: dict) -> dict:
    """An entry of SUCCEEDED_n.json: Input and Output are JSON strings, as on AWS."""
    return {"ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:b/ClassifyEachObject:x",
            "Input": json.dumps({"bucket": BUCKET, "key": output["key"]}), "InputDetails": {"Included": True},
            "Name": "x", "Output": json.dumps(output), "OutputDetails": {"Included": True}, "Status": "SUCCEEDED"}


def write_results(s3, files: dict[str, list[dict]]) -> str:
    manifest = {"DestinationBucket": BUCKET, "MapRunArn": "arn", "ResultFiles": {"FAILED": [], "PENDING": [],
                                                                                  "SUCCEEDED": []}}
    for status, entries in files.items():
        key = f"{RUN}/{status}_0.json"
        body = json.dumps(entries).encode()
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        manifest["ResultFiles"][status].append({"Key": key, "Size": len(body)})
    s3.put_object(Bucket=BUCKET, Key=f"{RUN}/manifest.json", Body=json.dumps(manifest).encode())
    return f"{RUN}/manifest.json"


def test_every_object_lands_in_exactly_one_group_and_the_summary_is_written(s3, lambda_context):
    manifest = write_results(s3, {
        "SUCCEEDED": [succeeded({"key": "in/a.png", "outcome": "classified", "label": "bicycle", "confidence": 0.99}),
                      succeeded({"key": "in/b.png", "outcome": "classified", "label": "motorcycle",
                                 "confidence": 0.97}),
                      succeeded({"key": "in/c.png", "outcome": "review", "error": "LowConfidenceError"}),
                      succeeded({"key": "in/d.txt", "outcome": "failed", "error": "NotAnImageError"})],
        "FAILED": [{"Input": json.dumps({"bucket": BUCKET, "key": "in/e.png"}), "Status": "FAILED",
                    "Error": "States.Timeout", "Cause": "..."}],
        "PENDING": [{"Input": json.dumps({"bucket": BUCKET, "key": "in/f.png"}), "Status": "PENDING"}],
    })
    event = {"bucket": BUCKET, "prefix": "in/", "results": {"Bucket": BUCKET, "Key": manifest},
             "summary_key": "batch-results/b1/summary.json"}

    result = app.lambda_handler(event, lambda_context)

    summary = json.loads(s3.get_object(Bucket=BUCKET, Key="batch-results/b1/summary.json")["Body"].read())
    assert summary == {
        "bucket": BUCKET, "prefix": "in/", "objects": 6, "complete": True, "error": None,
        "classified": {"count": 2, "keys": ["in/a.png", "in/b.png"], "labels": {"bicycle": 1, "motorcycle": 1}},
        "review": {"count": 1, "keys": ["in/c.png"]},
        "failed": {"count": 3, "keys": {"in/d.txt": "NotAnImageError", "in/e.png": "States.Timeout",
                                        "in/f.png": "NotStarted"}},
        "results_uri": f"s3://{BUCKET}/batch-results/b1/results.csv",
    }
    rows = s3.get_object(Bucket=BUCKET, Key="batch-results/b1/results.csv")["Body"].read().decode()
    assert rows.splitlines() == [  # which file got which label, one row per object
        "key,label,confidence,outcome,error",
        "in/a.png,bicycle,0.99,classified,",
        "in/b.png,motorcycle,0.97,classified,",
        "in/c.png,,,review,LowConfidenceError",
        "in/d.txt,,,failed,NotAnImageError",
        "in/e.png,,,failed,States.Timeout",
        "in/f.png,,,failed,NotStarted"]
    assert result == {"summary": f"s3://{BUCKET}/batch-results/b1/summary.json", "objects": 6, "classified": 2,
                      "review": 1, "failed": 3, "complete": True}


def test_a_redriven_object_counts_once_by_its_last_outcome(s3, lambda_context):
    manifest = write_results(s3, {
        "FAILED": [{"Input": json.dumps({"key": "in/a.png"}), "Error": "States.Timeout", "Status": "FAILED"}],
        "SUCCEEDED": [succeeded({"key": "in/a.png", "outcome": "classified", "label": "bicycle"})],
    })
    result = app.lambda_handler({"bucket": BUCKET, "prefix": "in/", "results": {"Bucket": BUCKET, "Key": manifest},
                                 "summary_key": "s.json"}, lambda_context)
    assert (result["objects"], result["classified"], result["failed"]) == (1, 1, 0)


def test_after_a_map_failure_listed_objects_without_a_result_are_not_started(s3, lambda_context):
    for key in ("in/a.png", "in/b.png", "in/c.png"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=f"{RUN}/SUCCEEDED_0.json", Body=json.dumps(
        [succeeded({"key": "in/a.png", "outcome": "review", "error": "LowConfidenceError"})]).encode())
    event = {"bucket": BUCKET, "prefix": "in/", "results_bucket": BUCKET, "results_prefix": "batch-results/b1/",
             "map_error": {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "..."},
             "summary_key": "batch-results/b1/summary.json"}

    result = app.lambda_handler(event, lambda_context)

    summary = json.loads(s3.get_object(Bucket=BUCKET, Key="batch-results/b1/summary.json")["Body"].read())
    assert (summary["complete"], summary["error"]) == (False, "States.ExceedToleratedFailureThreshold")
    assert summary["review"]["keys"] == ["in/a.png"]
    assert summary["failed"]["keys"] == {"in/b.png": "NotStarted", "in/c.png": "NotStarted"}
    assert result["complete"] is False


@pytest.mark.parametrize("event", [{}, {"bucket": BUCKET, "prefix": "in/"}, []])
def test_an_event_without_its_fields_is_invalid(event, lambda_context):
    with pytest.raises(app.InvalidEventError):
        app.lambda_handler(event, lambda_context)
