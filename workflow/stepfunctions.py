"""Step Functions calls shared by the AWS commands and the offline runtime: boto3 only.

Start an execution with the starter's input, wait for its end, read it back, and read the review/
record the state machine writes for a low-confidence item. The same code runs against AWS and
against moto.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from common.errors import EnvironmentProblem

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class ExecutionTimeoutError(EnvironmentProblem):
    """An execution did not reach a terminal status in time."""


@dataclass(frozen=True)
class ExecutionResult:
    execution_arn: str
    name: str
    status: str
    input: dict[str, Any]
    output: Any
    error: str | None
    cause: str | None
    duration_s: float

    @property
    def cause_message(self) -> str | None:
        """The errorMessage inside a Lambda error's cause, or the cause itself."""
        if self.cause is None:
            return None
        try:
            return str(json.loads(self.cause).get("errorMessage", self.cause))
        except (json.JSONDecodeError, AttributeError):
            return self.cause


def execution_input(bucket: str, key: str) -> str:
    """The starter's execution input, as JSON (never built by string formatting)."""
    return json.dumps({"image_data": "", "s3_bucket": bucket, "s3_key": key})


def start_execution(sfn: Any, state_machine_arn: str, bucket: str, key: str, *, name: str | None = None) -> str:
    """Start one execution with the starter's input shape; returns its ARN."""
    response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name or str(uuid.uuid4()),
                                   input=execution_input(bucket, key))
    return str(response["executionArn"])


def read_review_record(s3: Any, bucket: str, execution_name: str) -> dict[str, Any] | None:
    """The review/ record the state machine wrote for a low-confidence execution, if any."""
    try:
        body = s3.get_object(Bucket=bucket, Key=f"review/{execution_name}.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    record: dict[str, Any] = json.loads(body)
    return record


def describe_execution(sfn: Any, execution_arn: str) -> ExecutionResult:
    """DescribeExecution as a result (output, error and duration are final once the status is terminal)."""
    description = sfn.describe_execution(executionArn=execution_arn)
    stop = description.get("stopDate", description["startDate"])
    return ExecutionResult(
        execution_arn=execution_arn,
        name=execution_arn.rsplit(":", 1)[1],
        status=description["status"],
        input=json.loads(description["input"]),
        output=json.loads(description["output"]) if description.get("output") else None,
        error=description.get("error"),
        cause=description.get("cause"),
        duration_s=(stop - description["startDate"]).total_seconds(),
    )


def wait_for_execution(sfn: Any, execution_arn: str, *, timeout: float, poll_interval: float,
                       max_poll_interval: float | None = None) -> ExecutionResult:
    """Poll DescribeExecution until the execution ends (moto has no StartSyncExecution).

    The interval grows by half each poll up to `max_poll_interval` (10x the first by default): quick
    executions are seen quickly, slow ones (retries that back off for seconds) are not polled hard.
    """
    deadline = time.monotonic() + timeout
    interval, ceiling = poll_interval, max_poll_interval or poll_interval * 10
    while True:
        result = describe_execution(sfn, execution_arn)
        if result.status in TERMINAL_STATUSES:
            return result
        if time.monotonic() > deadline:
            raise ExecutionTimeoutError(f"{execution_arn} still {result.status} after {timeout} s")
        time.sleep(interval)
        interval = min(ceiling, interval * 1.5)


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution's history, in order (all pages)."""
    events: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**arguments)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        arguments["nextToken"] = page["nextToken"]
