"""Classify every object under an S3 prefix with the batch state machine: boto3 only, AWS and offline alike.

The batch machine (statemachine/batch_classification.asl.json) lists the prefix in a Distributed Map,
runs each object through the EXPRESS image-classification machine and writes a summary object
(summarize-batch). This module starts it, follows its Map Run for progress, and reads the summary back.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from common.artefacts import parse_s3_uri
from common.errors import EnvironmentProblem, InputError
from common.progress import Progress
from workflow.executions import outcomes_verdict
from workflow.stepfunctions import wait_for_execution

RESULTS_PREFIX = "batch-results/"
DONE_COUNTS = ("succeeded", "failed", "timedOut", "aborted")


class EmptyPrefixError(InputError):
    """There is no object under the prefix: nothing to classify."""


class BatchFailedError(EnvironmentProblem):
    """The batch execution failed before it could write a summary."""


def normalise_prefix(prefix: str) -> str:
    """A folder-like prefix (`path/`): `path` alone would also match `pathology/...`."""
    prefix = prefix.lstrip("/")
    if not prefix:
        raise InputError("give a prefix (s3://bucket/path/): classifying a whole bucket would include its "
                         "review/, uploads/ and batch-results/ objects")
    if prefix.startswith(RESULTS_PREFIX):
        raise InputError(f"{prefix} holds batch results, not images")
    return prefix if prefix.endswith("/") else prefix + "/"


def check_not_empty(s3: Any, bucket: str, prefix: str) -> None:
    if not s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
        raise EmptyPrefixError(f"no objects under s3://{bucket}/{prefix}")


def start_batch(sfn: Any, state_machine_arn: str, bucket: str, prefix: str, *, max_concurrency: int | None = None,
                tolerated_failure_percentage: float | None = None) -> str:
    """Start the batch machine on s3://bucket/prefix; returns the execution ARN."""
    batch_input: dict[str, Any] = {"bucket": bucket, "prefix": prefix}
    if max_concurrency is not None:
        batch_input["max_concurrency"] = max_concurrency
    if tolerated_failure_percentage is not None:
        batch_input["tolerated_failure_percentage"] = tolerated_failure_percentage
    response = sfn.start_execution(stateMachineArn=state_machine_arn, name=f"batch-{uuid.uuid4()}",
                                   input=json.dumps(batch_input))
    return str(response["executionArn"])


def map_run_progress(sfn: Any, execution_arn: str) -> tuple[int, int | None]:
    """(objects done, objects in the Map Run) from DescribeMapRun; (0, None) before the Map Run starts."""
    runs = sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
    if not runs:
        return 0, None
    counts = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
    return sum(int(counts.get(name, 0)) for name in DONE_COUNTS), int(counts.get("total", 0)) or None


def wait_for_batch(sfn: Any, execution_arn: str, *, timeout: float, poll_interval: float,
                   progress: Progress | None = None, expected: int | None = None) -> Any:
    """Poll (every `poll_interval`) until the batch ends, reporting objects done; returns its ExecutionResult."""

    def report() -> None:
        if progress is not None:
            done, total = map_run_progress(sfn, execution_arn)
            progress(done, max(total or 0, expected or 0) or None)

    return wait_for_execution(sfn, execution_arn, timeout=timeout, poll_interval=poll_interval,
                              max_poll_interval=poll_interval, on_poll=report)


def read_summary(s3: Any, uri: str) -> dict[str, Any]:
    location = parse_s3_uri(uri)
    summary: dict[str, Any] = json.loads(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read())
    return summary


def summary_uri_after_failure(s3: Any, bucket: str, execution_name: str) -> str | None:
    """Where summarize-batch wrote the summary of a batch whose Map failed, if it did."""
    key = f"{RESULTS_PREFIX}{execution_name}/summary.json"
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code", "") not in {"404", "NoSuchKey"}:
            raise  # access denied, throttling: not "no summary" (the CLI runner says what it is)
        return None
    return f"s3://{bucket}/{key}"


def download_results(s3: Any, summary: dict[str, Any], path: Path) -> Path | None:
    """summarize-batch's results.csv (key,label,confidence,outcome,error: which file got which label) to `path`;
    None for a summary that names none."""
    uri = summary.get("results_uri")
    if not uri:
        return None
    location = parse_s3_uri(str(uri))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read())
    return path


def batch_verdict(summary: dict[str, Any]) -> tuple[int, str]:
    """(objects that failed unexpectedly, the verdict line): every failed object is unexpected (a named error such as
    NotAnImageError, a child workflow that broke, an object never started); sent to review is the workflow's job."""
    failures = Counter(str(error) for error in summary["failed"]["keys"].values())
    return summary["failed"]["count"], outcomes_verdict("objects", summary["objects"],
                                                        ("classified", summary["classified"]["count"]),
                                                        summary["review"]["count"], failures)


def classify_prefix(sfn: Any, s3: Any, state_machine_arn: str, bucket: str, prefix: str, *, results_bucket: str,
                    progress: Progress | None = None, expected: int | None = None, timeout: float = 24 * 3600,
                    poll_interval: float = 2.0, max_concurrency: int | None = None,
                    tolerated_failure_percentage: float | None = None) -> dict[str, Any]:
    """Run the batch over s3://bucket/prefix and return its summary (also stored in S3, at `summary_uri`), with
    `unexpected` and `verdict` (batch_verdict) added."""
    prefix = normalise_prefix(prefix)
    check_not_empty(s3, bucket, prefix)
    started = time.perf_counter()
    arn = start_batch(sfn, state_machine_arn, bucket, prefix, max_concurrency=max_concurrency,
                      tolerated_failure_percentage=tolerated_failure_percentage)
    result = wait_for_batch(sfn, arn, timeout=timeout, poll_interval=poll_interval, progress=progress,
                            expected=expected)
    elapsed = time.perf_counter() - started
    if result.status == "SUCCEEDED":
        uri = str(result.output["summary"])
    else:
        found = summary_uri_after_failure(s3, results_bucket, result.name)
        if found is None:
            raise BatchFailedError(f"batch {arn} {result.status}: {result.error}: {result.cause_message}")
        uri = found
    summary = read_summary(s3, uri)
    summary.update(execution_arn=arn, status=result.status, summary_uri=uri, elapsed_s=round(elapsed, 2),
                   objects_per_second=round(summary["objects"] / elapsed, 1) if elapsed else None)
    summary["unexpected"], summary["verdict"] = batch_verdict(summary)
    return summary
