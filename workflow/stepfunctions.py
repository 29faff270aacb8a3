"""Step Functions calls shared by the AWS commands and the offline runtime: boto3 only.

Start an execution with the starter's input, wait for its end, and read it back. The same code runs
against AWS and against moto.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.errors import EnvironmentProblem

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


STOPPED_ERROR = "ExecutionStopped"
# ASL defaults (Amazon States Language spec): a Task without TimeoutSeconds may run 99999999 s, and a
# retrier without these fields retries 3 times, 1 s apart at first, doubling.
RETRY_DEFAULTS = {"MaxAttempts": 3, "IntervalSeconds": 1, "BackoffRate": 2.0}


class ExecutionTimeoutError(EnvironmentProblem):
    """An execution did not reach a terminal status in time."""


@dataclass(frozen=True)
class ExecutionBounds:
    """How long an execution of a definition can last, derived from its TimeoutSeconds and Retry policies.

    `worst_case_s`: the longest path through the states, each Task taking all its attempts to the
    timeout and every retry back-off (None when a state has no bound: a Task without
    TimeoutSeconds, a Wait on a path, a Map, a loop). `longest_step_s`: the longest one attempt or
    one back-off lasts, which bounds how long a stopped execution can take to notice it was stopped.
    """

    worst_case_s: float | None
    longest_step_s: float | None


def _retry_delays(retriers: list[dict[str, Any]]) -> tuple[int, float, float]:
    """(retries, total back-off seconds, longest single back-off) over every retrier of a state."""
    retries, total, longest = 0, 0.0, 0.0
    for retrier in retriers:
        spec = {**RETRY_DEFAULTS, **retrier}
        cap = float(spec.get("MaxDelaySeconds", float("inf")))
        for attempt in range(int(spec["MaxAttempts"])):
            delay = min(cap, float(spec["IntervalSeconds"]) * float(spec["BackoffRate"]) ** attempt)
            retries, total, longest = retries + 1, total + delay, max(longest, delay)
    return retries, total, longest


def _state_bounds(state: dict[str, Any]) -> tuple[float | None, float | None]:
    """(worst case, longest step) of one state, its retries included."""
    kind = state["Type"]
    if kind in {"Pass", "Choice", "Succeed", "Fail"}:
        return 0.0, 0.0
    if kind == "Wait":
        return (float(state["Seconds"]),) * 2 if "Seconds" in state else (None, None)
    if kind == "Task":
        attempt: float | None = float(state["TimeoutSeconds"]) if "TimeoutSeconds" in state else None
        step = attempt
    elif kind == "Parallel":
        branches = [execution_bounds(branch) for branch in state["Branches"]]
        worst = [b.worst_case_s for b in branches]
        steps = [b.longest_step_s for b in branches]
        attempt = None if None in worst else max(w for w in worst if w is not None)
        step = None if None in steps else max(s for s in steps if s is not None)
    else:  # Map: as many iterations as items
        return None, None
    if attempt is None or step is None:
        return None, None
    retries, back_off, longest_back_off = _retry_delays(state.get("Retry", []))
    return (1 + retries) * attempt + back_off, max(step, longest_back_off)


def execution_bounds(definition: dict[str, Any] | str) -> ExecutionBounds:
    """The bounds of an ASL definition (a dict, or its JSON text): see ExecutionBounds."""
    asl: dict[str, Any] = json.loads(definition) if isinstance(definition, str) else definition
    states: dict[str, dict[str, Any]] = asl["States"]
    bounds = {name: _state_bounds(state) for name, state in states.items()}
    steps = [step for _, step in bounds.values()]
    longest_step = None if None in steps else max((s for s in steps if s is not None), default=0.0)

    def successors(state: dict[str, Any]) -> list[str]:
        nexts = [state["Next"]] if "Next" in state else []
        nexts += [catcher["Next"] for catcher in state.get("Catch", [])]
        nexts += [choice["Next"] for choice in state.get("Choices", [])]
        return nexts + ([state["Default"]] if "Default" in state else [])

    longest: dict[str, float | None] = {}

    def longest_from(name: str, path: frozenset[str]) -> float | None:
        if name in path:
            return None  # a loop: no bound from the definition alone
        if name not in longest:
            own = bounds[name][0]
            after = [longest_from(n, path | {name}) for n in successors(states[name])]
            longest[name] = None if own is None or None in after else own + max(
                (a for a in after if a is not None), default=0.0)
        return longest[name]

    worst = longest_from(asl["StartAt"], frozenset())
    if "TimeoutSeconds" in asl:
        worst = float(asl["TimeoutSeconds"]) if worst is None else min(worst, float(asl["TimeoutSeconds"]))
    return ExecutionBounds(worst, longest_step)


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
                       max_poll_interval: float | None = None,
                       on_poll: Callable[[], None] | None = None) -> ExecutionResult:
    """Poll DescribeExecution until the execution ends (moto has no StartSyncExecution).

    The interval grows by half each poll up to `max_poll_interval` (10x the first by default): quick
    executions are seen quickly, slow ones (retries that back off for seconds) are not polled hard.
    `on_poll` runs after each look (a batch reports its progress there).
    """
    deadline = time.monotonic() + timeout
    interval, ceiling = poll_interval, max_poll_interval or poll_interval * 10
    while True:
        result = describe_execution(sfn, execution_arn)
        if on_poll is not None:
            on_poll()
        if result.status in TERMINAL_STATUSES:
            return result
        if time.monotonic() > deadline:
            raise ExecutionTimeoutError(f"{execution_arn} still {result.status} after {timeout} s")
        time.sleep(interval)
        interval = min(ceiling, interval * 1.5)


def stop_execution(sfn: Any, execution_arn: str, *, cause: str, error: str = STOPPED_ERROR) -> None:
    """StopExecution, naming why (on AWS the execution ends ABORTED with this error and cause)."""
    sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause)


def settle_execution(sfn: Any, execution_arn: str, bounds: ExecutionBounds, *, poll_interval: float,
                     max_poll_interval: float | None = None, deadline_s: float | None = None,
                     margin_s: float = 5.0) -> ExecutionResult:
    """Wait for the execution's real end, bounded by the definition's worst case.

    An execution still running past `deadline_s` (default: the worst case plus `margin_s`) is
    stopped explicitly, and its end as ABORTED is awaited, so whoever reports on it never leaves it
    running under services about to go away. A definition without a bound must be given a deadline.
    """
    deadline = deadline_s if deadline_s is not None else (
        None if bounds.worst_case_s is None else bounds.worst_case_s + margin_s)
    if deadline is None:
        raise ExecutionTimeoutError("the state machine sets no bound on an execution's duration: give a deadline")
    try:
        return wait_for_execution(sfn, execution_arn, timeout=deadline, poll_interval=poll_interval,
                                  max_poll_interval=max_poll_interval)
    except ExecutionTimeoutError:
        stop_execution(sfn, execution_arn, cause=f"still running after {deadline:g} s, the state machine's worst "
                                                 f"case (TimeoutSeconds and Retry)")
    # A stopped execution ends at once on AWS; moto ends it once the state in flight returns.
    grace = (bounds.longest_step_s or 0.0) + margin_s
    return wait_for_execution(sfn, execution_arn, timeout=grace, poll_interval=poll_interval,
                              max_poll_interval=max_poll_interval)  # ABORTED: its status says it was stopped


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
