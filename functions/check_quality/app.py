"""check-quality: `python -m monitoring quality`, run on a schedule against the data bucket, published to CloudWatch.

Each run (the template's QualityCheckSchedule, hourly by default) reads the decisions recorded in the
last WINDOW_HOURS (audit/ and review/ records, by their LastModified and then their recorded_at; at most
MAX_RECORDS of each, the most recent) and the labels that can judge them (labels/), joins them with the
ModelQualityLayer's code, the package the CLI imports, and publishes under METRICS_NAMESPACE (dimension
EndpointName; per class also Class): Precision, PrecisionLowerBound and PrecisionUpperBound (only with at
least one labelled audit), Audited, AuditsNeeded, UnlabelledAudits, OldestUnlabelledAuditHours (0 without a
backlog), ReviewRate, ReviewerAgreement and MisroutedShare (when known), LabelConflicts and BadInputs (labels of
decisions older than the window are not bad input), and WorstClassPrecisionUpperBound (the lowest upper bound of
the classes with at least two wrong audits, which can show a shortfall on their own: modelquality.assess).
ModelQualityAlarm watches PrecisionUpperBound against TargetPrecision, ClassQualityAlarm
WorstClassPrecisionUpperBound against it; AuditBacklogAlarm watches
OldestUnlabelledAuditHours against AuditBacklogHours. Bad input is counted (and named in the log), never
fatal; a configuration or S3 access problem fails the invocation by name (CheckQualityErrorsAlarm), and so does a
window it cannot list and read before its timeout (WindowTooLargeError, MARGIN_SECONDS early: the listing grows with
every record ever written, so ListedKeys is published each run to show it coming; docs/monitoring.md has the
arithmetic). Records are read READ_WORKERS at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from modelquality.assess import CONFLICT, Assessment, Figures, assess, load
from modelquality.bucket import S3Bucket

METRICS_PER_CALL = 20  # PutMetricData's historical limit per request (now 1,000): always safe
READ_WORKERS = 16  # GetObject calls at once (the S3 client's connection pool is sized to match)
MARGIN_SECONDS = 30.0  # kept back from the timeout for joining, judging and publishing


class ConfigurationError(Exception):
    """The function's environment (set by template.yaml) is missing a value or holds an invalid one."""


@dataclass(frozen=True)
class Settings:
    bucket: str
    window_hours: int
    max_records: int
    target: float
    class_names: tuple[str, ...]
    endpoint: str
    namespace: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        names = ("DATA_BUCKET", "WINDOW_HOURS", "MAX_RECORDS", "TARGET_PRECISION", "CLASS_NAMES", "ENDPOINT_NAME",
                 "METRICS_NAMESPACE")
        missing = [name for name in names if not environ.get(name, "").strip()]
        if missing:
            raise ConfigurationError(f"missing from the environment: {', '.join(missing)}")
        try:
            window_hours, max_records = int(environ["WINDOW_HOURS"]), int(environ["MAX_RECORDS"])
            target = float(environ["TARGET_PRECISION"])
        except ValueError as error:
            raise ConfigurationError(f"WINDOW_HOURS and MAX_RECORDS must be integers and TARGET_PRECISION a "
                                     f"number: {error}") from None
        if window_hours < 1 or max_records < 1 or not 0 < target <= 1:
            raise ConfigurationError("WINDOW_HOURS and MAX_RECORDS must be at least 1, TARGET_PRECISION in (0, 1]")
        classes = tuple(name.strip() for name in environ["CLASS_NAMES"].split(",") if name.strip())
        return cls(bucket=environ["DATA_BUCKET"], window_hours=window_hours, max_records=max_records, target=target,
                   class_names=classes, endpoint=environ["ENDPOINT_NAME"], namespace=environ["METRICS_NAMESPACE"])


SETTINGS = Settings.from_environment(os.environ)  # a bad value fails every invocation, by name
s3 = boto3.client("s3", config=Config(max_pool_connections=READ_WORKERS))
cloudwatch = boto3.client("cloudwatch")
logger = Logger()


def metric_data(assessment: Assessment, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """The datums to publish (see the module docstring), unrounded (an alarm compares them with the target): figures
    that cannot be known are left out, never published as 0."""
    endpoint = {"Name": "EndpointName", "Value": settings.endpoint}

    def datum(name: str, value: float | None, unit: str = "None", cls: str | None = None) -> list[dict[str, Any]]:
        if value is None:
            return []
        dimensions = [endpoint, {"Name": "Class", "Value": cls}] if cls else [endpoint]
        return [{"MetricName": name, "Dimensions": dimensions, "Timestamp": now, "Value": float(value),
                 "Unit": unit}]

    def precision(figures: Figures, cls: str | None = None) -> list[dict[str, Any]]:
        low, high = figures.precision.interval or (None, None)
        return [*datum("Audited", figures.precision.trials, "Count", cls),
                *datum("Precision", figures.precision.value, cls=cls),
                *datum("PrecisionLowerBound", low, cls=cls), *datum("PrecisionUpperBound", high, cls=cls)]

    overall = assessment.overall
    conflicts = sum(1 for problem in assessment.problems if problem.kind == CONFLICT)
    data = [*precision(overall),
            *datum("AuditsNeeded", assessment.needed, "Count"),
            *datum("UnlabelledAudits", len(assessment.backlog), "Count"),
            *datum("OldestUnlabelledAuditHours", assessment.oldest_unlabelled_hours() or 0.0),
            *datum("ReviewRate", overall.review_rate),
            *datum("ReviewerAgreement", overall.agreement.value),
            *datum("MisroutedShare", overall.misrouted(overall.precision.value)),
            *datum("LabelConflicts", conflicts, "Count"),
            *datum("BadInputs", assessment.bad_inputs, "Count"),
            *datum("WorstClassPrecisionUpperBound", assessment.worst_class_upper_bound),
            *datum("ListedKeys", assessment.listed, "Count")]
    for name in settings.class_names:
        if name in assessment.classes:
            data += precision(assessment.classes[name], name)
    return data


def publish(cloudwatch_client: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    for start in range(0, len(data), METRICS_PER_CALL):
        cloudwatch_client.put_metric_data(Namespace=namespace, MetricData=data[start:start + METRICS_PER_CALL])


def run_check(s3_client: Any, cloudwatch_client: Any, settings: Settings, now: datetime, *,
              time_left: Callable[[], float] | None = None) -> dict[str, Any]:
    """Read, join, judge, publish; the assessment as a JSON-ready dict. With `time_left` (seconds), a window that
    cannot be listed and read in time fails as WindowTooLargeError, before anything is published."""
    since = now - timedelta(hours=settings.window_hours)
    inputs = load(S3Bucket(s3_client, settings.bucket, time_left=time_left, forbidden_is_missing=True), since=since,
                  max_records=settings.max_records, all_labels=False, workers=READ_WORKERS)
    assessment = assess(inputs, settings.class_names, settings.target, now=now, since=since)
    publish(cloudwatch_client, settings.namespace, metric_data(assessment, settings, now))
    return assessment.as_dict()


@logger.inject_lambda_context
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Scheduled by EventBridge Scheduler; the event carries nothing the check needs. It stops listing and reading
    MARGIN_SECONDS (at most a tenth of its time) before the function's timeout, by name (WindowTooLargeError),
    rather than being cut off."""
    margin = min(MARGIN_SECONDS, context.get_remaining_time_in_millis() / 10_000)
    outcome = run_check(s3, cloudwatch, SETTINGS, datetime.now(UTC),
                        time_left=lambda: context.get_remaining_time_in_millis() / 1000 - margin)
    logger.info("quality checked", extra={"verdict": outcome["verdict"], "reason": outcome["reason"],
                                          "audited": outcome["audited"], "problems": outcome["problems"],
                                          "problem_examples": outcome["problem_examples"]})
    return outcome
