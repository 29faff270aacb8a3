"""Run many executions and account for every one of them: the summary both the offline and AWS paths print.

An execution's outcome is what Step Functions says about it (its status, its error and, for an item sent to review,
its cause), never an exception of ours: a call that fails while we watch (access denied, throttling, a timeout)
or a bug stops the run and is raised as it is, for the CLI runner to report as what it is (exit 3 or 4), instead
of being counted as an execution that failed.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from common.stats import percentile
from workflow.stepfunctions import (
    STOPPED_ERROR,
    ExecutionBounds,
    ExecutionResult,
    settle_execution,
    start_execution,
    wait_for_execution,
)

LOW_CONFIDENCE = "LowConfidenceError"


@dataclass
class Outcome:
    key: str
    status: str  # succeeded | review | failed | aborted (stopped: it outlived the state machine's worst case)
    error: str | None
    predicted: str | None
    confidence: float | None
    latency_s: float


def outcomes_verdict(noun: str, total: int, done: tuple[str, int], review: int, failures: Mapping[str, int], *,
                     aborted: int = 0) -> str:
    """The one line every command that reports outcomes ends with (start-executions, workflow run, classify-prefix):
    `OK: none of the N <noun> failed (...)`, or `FAILED: n of N <noun> failed unexpectedly (<error> <count>, ...)`.
    Sent to review is the workflow doing its job, not a failure; `done` is (what the rest did, how many)."""
    unexpected = sum(failures.values()) + aborted
    if not unexpected:
        return f"OK: none of the {total} {noun} failed ({done[1]} {done[0]}, {review} sent to review)"
    by_error = ", ".join(f"{error} {count}" for error, count in sorted(failures.items()))
    stopped = f"{aborted} aborted" if aborted else ""
    return (f"FAILED: {unexpected} of {total} {noun} failed unexpectedly ("
            + "; ".join(part for part in (by_error, stopped) if part) + ")")


@dataclass
class Summary:
    outcomes: list[Outcome]
    elapsed_s: float
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def counts(self) -> Counter[str]:
        return Counter(o.status for o in self.outcomes)

    @property
    def failures(self) -> Counter[str]:
        return Counter(o.error or "" for o in self.outcomes if o.status == "failed")

    @property
    def unexpected(self) -> int:
        """Executions that failed or were aborted: anything but classified or sent to review (which is the
        workflow doing its job)."""
        return self.counts["failed"] + self.counts["aborted"]

    def verdict(self) -> str:
        """One line: whether every execution ended as the workflow intends (succeeded, or sent to review)."""
        return outcomes_verdict("executions", len(self.outcomes), ("succeeded", self.counts["succeeded"]),
                                self.counts["review"], self.failures, aborted=self.counts["aborted"])

    def accuracy(self, statuses: Sequence[str]) -> tuple[int, int]:
        """(correct, judged) among outcomes with these statuses whose true label is known."""
        judged = [o for o in self.outcomes if o.status in statuses and o.key in self.labels and o.predicted]
        return sum(o.predicted == self.labels[o.key] for o in judged), len(judged)

    def as_dict(self) -> dict[str, Any]:
        latencies = [o.latency_s for o in self.outcomes]
        passed_correct, passed = self.accuracy(["succeeded"])
        all_correct, judged = self.accuracy(["succeeded", "review"])
        return {
            "executions": len(self.outcomes),
            "succeeded": self.counts["succeeded"],
            "review": self.counts["review"],
            "failed": self.counts["failed"],
            "aborted": self.counts["aborted"],
            "failed_by_error": dict(self.failures),
            "accuracy_of_passed": round(passed_correct / passed, 4) if passed else None,
            "accuracy_of_model": round(all_correct / judged, 4) if judged else None,
            "executions_per_second": round(len(self.outcomes) / self.elapsed_s, 1) if self.elapsed_s else None,
            "latency_p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
            "latency_p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
        }


def review_prediction(cause: str | None) -> tuple[str | None, float | None]:
    """(label, confidence) the model gave an item sent to review, from the execution's own cause: the LowConfidence
    state fails with the VehicleNeedsReview detail as JSON (statemachine/image_classification.asl.json). A cause
    of another shape (an older definition) leaves them unknown; the outcome is review either way."""
    try:
        detail = json.loads(cause or "")
    except json.JSONDecodeError:
        return None, None
    if not isinstance(detail, dict):
        return None, None
    label, confidence = detail.get("label"), detail.get("confidence")
    return (label if isinstance(label, str) else None,
            float(confidence) if isinstance(confidence, int | float) and not isinstance(confidence, bool) else None)


def outcome_of(result: ExecutionResult) -> Outcome:
    """Classify an execution by its status and error; the model's answer comes from its output or cause."""
    key = str(result.input.get("s3_key"))
    if result.status == "SUCCEEDED":
        body = result.output.get("body") if isinstance(result.output, dict) else None
        prediction = body.get("prediction") if isinstance(body, dict) else None
        prediction = prediction if isinstance(prediction, dict) else {}
        return Outcome(key, "succeeded", None, prediction.get("label"), prediction.get("confidence"),
                       result.duration_s)
    if result.status == "ABORTED":
        return Outcome(key, "aborted", result.error or STOPPED_ERROR, None, None, result.duration_s)
    if result.error == LOW_CONFIDENCE:
        label, confidence = review_prediction(result.cause)
        return Outcome(key, "review", LOW_CONFIDENCE, label, confidence, result.duration_s)
    return Outcome(key, "failed", result.error or result.status, None, None, result.duration_s)


def run_execution(sfn: Any, state_machine_arn: str, bucket: str, key: str, *, timeout: float | None = None,
                  poll_interval: float, max_poll_interval: float | None = None,
                  bounds: ExecutionBounds | None = None) -> Outcome:
    """Start one execution for `key`, wait for it, and classify it.

    With `bounds` (the state machine's, see stepfunctions.execution_bounds), the wait lasts until
    the execution's real end, and one still running past the worst case (or `timeout`) is stopped
    and counted as aborted. Without, an execution still running after `timeout` raises
    ExecutionTimeoutError and is left running (on AWS, where nothing is torn down under it).
    """
    arn = start_execution(sfn, state_machine_arn, bucket, key)
    if bounds is not None:
        result = settle_execution(sfn, arn, bounds, poll_interval=poll_interval,
                                  max_poll_interval=max_poll_interval, deadline_s=timeout)
    else:
        if timeout is None:
            raise ValueError("give a timeout or the state machine's bounds")
        result = wait_for_execution(sfn, arn, timeout=timeout, poll_interval=poll_interval,
                                    max_poll_interval=max_poll_interval)
    return outcome_of(result)


def run_all(keys: Sequence[str], run_one: Callable[[str], Outcome], *, concurrency: int,
            on_done: Callable[[Outcome], None] | None = None, labels: Mapping[str, str] | None = None) -> Summary:
    """Run one execution per key with bounded concurrency; every key yields exactly one outcome.

    When `run_one` raises (we could not start or watch an execution: AWS refused a call, a wait timed out, a bug),
    no further execution starts, those in flight are awaited, and the error is raised as it is (the first key's,
    when several raised): a failure to observe an execution is not the execution's failure.
    """
    started = time.perf_counter()
    stop = threading.Event()

    def observed(key: str) -> Outcome | None:
        if stop.is_set():
            return None  # another key's execution could not be watched: start no more
        try:
            outcome = run_one(key)
        except BaseException:
            stop.set()  # before this worker takes the next key
            raise
        if on_done:
            on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(observed, key) for key in keys]  # the pool's shutdown awaits those in flight
    errors = [error for future in futures if (error := future.exception()) is not None]
    if errors:
        raise errors[0]
    outcomes = [future.result() for future in futures]
    return Summary([outcome for outcome in outcomes if outcome is not None], time.perf_counter() - started,
                   labels or {})
