"""Run many executions and account for every one of them: the summary both the offline and AWS paths print."""

from __future__ import annotations

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
    read_review_record,
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


def outcome_of(result: ExecutionResult, review: Mapping[str, Any] | None = None) -> Outcome:
    """Classify an execution; the prediction of a reviewed item comes from its review record."""
    key = str(result.input.get("s3_key"))
    if result.status == "SUCCEEDED":
        prediction = result.output["body"]["prediction"]
        return Outcome(key, "succeeded", None, prediction["label"], prediction["confidence"], result.duration_s)
    if result.status == "ABORTED":
        return Outcome(key, "aborted", result.error or STOPPED_ERROR, None, None, result.duration_s)
    if result.error == LOW_CONFIDENCE:
        prediction = (review or {}).get("prediction") or {}
        return Outcome(key, "review", LOW_CONFIDENCE, prediction.get("label"), prediction.get("confidence"),
                       result.duration_s)
    return Outcome(key, "failed", result.error or result.status, None, None, result.duration_s)


def run_execution(sfn: Any, s3: Any, state_machine_arn: str, bucket: str, key: str, *, timeout: float | None = None,
                  poll_interval: float, max_poll_interval: float | None = None,
                  bounds: ExecutionBounds | None = None) -> Outcome:
    """Start one execution for `key`, wait for it, and classify it (reading its review record if any).

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
    review = read_review_record(s3, bucket, result.name) if result.error == LOW_CONFIDENCE else None
    return outcome_of(result, review)


def run_all(keys: Sequence[str], run_one: Callable[[str], Outcome], *, concurrency: int,
            on_done: Callable[[Outcome], None] | None = None, labels: Mapping[str, str] | None = None) -> Summary:
    """Run one execution per key with bounded concurrency; every key yields exactly one outcome."""
    started = time.perf_counter()

    def guarded(key: str) -> Outcome:
        try:
            outcome = run_one(key)
        except Exception as error:  # noqa: BLE001 - an input is never lost: it is counted as failed, by name
            outcome = Outcome(key, "failed", type(error).__name__, None, None, 0.0)
        if on_done:
            on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(pool.map(guarded, keys))
    return Summary(outcomes, time.perf_counter() - started, labels or {})
