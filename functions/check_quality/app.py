"""check-quality: `python -m monitoring quality`, run on a schedule against the data bucket, published to CloudWatch.

Each run (the template's QualityCheckSchedule, hourly by default) reads the decisions recorded in the
last WINDOW_HOURS (audit/ and review/ records, by their LastModified and then their recorded_at; at most
MAX_RECORDS of each, the most recent) and the labels that can judge them (labels/), joins them with the
ModelQualityLayer's code, the package the CLI imports, and publishes under METRICS_NAMESPACE (dimension
EndpointName; per class also Class): Precision, PrecisionLowerBound and PrecisionUpperBound (only with at
least one labelled audit), Audited, AuditsNeeded, UnlabelledAudits, OldestUnlabelledAuditHours (0 without a
backlog), ReviewRate, ReviewerAgreement and MisroutedShare (when known), LabelConflicts and BadInputs.
ModelQualityAlarm watches PrecisionUpperBound against TargetPrecision; AuditBacklogAlarm watches
OldestUnlabelledAuditHours against AuditBacklogHours. Bad input is counted (and named in the log), never
fatal; a configuration or S3 access problem fails the invocation by name (CheckQualityErrorsAlarm).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from modelquality.assess import CONFLICT, Assessment, assess, load
from modelquality.bucket import S3Bucket

METRICS_PER_CALL = 20  # PutMetricData's historical limit per request (now 1,000): always safe


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
s3 = boto3.client("s3")
cloudwatch = boto3.client("cloudwatch")
logger = Logger()


def metric_data(assessment: Assessment, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """The datums to publish (see the module docstring): figures that cannot be known are left out, not zero."""
    endpoint = {"Name": "EndpointName", "Value": settings.endpoint}
    report = assessment.as_dict()

    def datum(name: str, value: float | None, unit: str = "None", cls: str | None = None) -> list[dict[str, Any]]:
        if value is None:
            return []
        dimensions = [endpoint, {"Name": "Class", "Value": cls}] if cls else [endpoint]
        return [{"MetricName": name, "Dimensions": dimensions, "Timestamp": now, "Value": float(value),
                 "Unit": unit}]

    def precision(figures: dict[str, Any], cls: str | None = None) -> list[dict[str, Any]]:
        low, high = figures["precision_interval"] or (None, None)
        return [*datum("Audited", figures["audited"], "Count", cls), *datum("Precision", figures["precision"],
                                                                            cls=cls),
                *datum("PrecisionLowerBound", low, cls=cls), *datum("PrecisionUpperBound", high, cls=cls)]

    problems = report["problems"]
    data = [*precision(report),
            *datum("AuditsNeeded", report["audits_needed"], "Count"),
            *datum("UnlabelledAudits", report["backlog"]["unlabelled_audits"], "Count"),
            *datum("OldestUnlabelledAuditHours", report["backlog"]["oldest_unlabelled_audit_hours"] or 0.0),
            *datum("ReviewRate", report["review_rate"]),
            *datum("ReviewerAgreement", report["reviewer_agreement"]),
            *datum("MisroutedShare", report["misrouted_share"]),
            *datum("LabelConflicts", problems[CONFLICT], "Count"),
            *datum("BadInputs", sum(count for kind, count in problems.items() if kind != CONFLICT), "Count")]
    for name in settings.class_names:
        data += precision(report["classes"][name], name)
    return data


def publish(cloudwatch_client: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    for start in range(0, len(data), METRICS_PER_CALL):
        cloudwatch_client.put_metric_data(Namespace=namespace, MetricData=data[start:start + METRICS_PER_CALL])


def run_check(s3_client: Any, cloudwatch_client: Any, settings: Settings, now: datetime) -> dict[str, Any]:
    """Read, join, judge, publish; the assessment as a JSON-ready dict."""
    since = now - timedelta(hours=settings.window_hours)
    inputs = load(S3Bucket(s3_client, settings.bucket), since=since, max_records=settings.max_records,
                  all_labels=False)
    assessment = assess(inputs, settings.class_names, settings.target, now=now, since=since)
    publish(cloudwatch_client, settings.namespace, metric_data(assessment, settings, now))
    return assessment.as_dict()


@logger.inject_lambda_context
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Scheduled by EventBridge Scheduler; the event carries nothing the check needs."""
    outcome = run_check(s3, cloudwatch, SETTINGS, datetime.now(UTC))
    logger.info("quality checked", extra={"verdict": outcome["verdict"], "reason": outcome["reason"],
                                          "audited": outcome["audited"], "problems": outcome["problems"],
                                          "problem_examples": outcome["problem_examples"]})
    return outcome
