"""check-drift: the drift check of `python -m monitoring drift`, run on a schedule against the capture in S3.

Each run (the template's DriftCheckSchedule, hourly by default) reads the last WINDOW_HOURS of the
endpoint's data capture (only those hour folders are listed), validates every record and decodes
every request with the layers' code, driftcheck (DriftCheckLayer) and imaging (ImagingLayer), the
same packages the CLI imports, and compares the window with the baseline.json at BASELINE_KEY. It
publishes to CloudWatch (namespace METRICS_NAMESPACE, dimension EndpointName): PSI, PValue and
Drifted per Feature, and DriftedFeatures, Samples and MalformedRecords; the ModelDriftAlarm watches
DriftedFeatures. A window with fewer inferences than the check's min_samples publishes Samples and
MalformedRecords only: no verdict. A missing or unusable baseline, or a baseline whose classes are
not the stack's ClassNames, fails the invocation by name (CheckDriftErrorsAlarm): it never passes
as "no drift".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from driftcheck.baseline import Baseline
from driftcheck.capture import CaptureSet, read_capture, s3_files
from driftcheck.checks import DriftConfig, DriftResult, Window, check_drift
from driftcheck.errors import BaselineError, InsufficientDataError
from imaging.preprocess import to_model_input

METRICS_PER_CALL = 20  # PutMetricData's historical limit per request (now 1,000): always safe
SMALLEST_METRIC = 1e-100  # CloudWatch rejects non-zero values below about 8.5e-109


class ConfigurationError(Exception):
    """The function's environment (set by template.yaml) is missing a value or holds an invalid one."""


@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str  # <capture destination>/<endpoint>: the variants' folders are below it
    baseline_key: str
    window_hours: int
    max_records: int
    class_names: tuple[str, ...]
    endpoint: str
    namespace: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        names = ("CAPTURE_BUCKET", "CAPTURE_PREFIX", "BASELINE_KEY", "WINDOW_HOURS", "MAX_RECORDS", "CLASS_NAMES",
                 "ENDPOINT_NAME", "METRICS_NAMESPACE")
        missing = [name for name in names if not environ.get(name, "").strip()]
        if missing:
            raise ConfigurationError(f"missing from the environment: {', '.join(missing)}")
        try:
            window_hours, max_records = int(environ["WINDOW_HOURS"]), int(environ["MAX_RECORDS"])
        except ValueError as error:
            raise ConfigurationError(f"WINDOW_HOURS and MAX_RECORDS must be integers: {error}") from None
        if window_hours < 1 or max_records < 1:
            raise ConfigurationError("WINDOW_HOURS and MAX_RECORDS must be at least 1")
        return cls(bucket=environ["CAPTURE_BUCKET"], prefix=environ["CAPTURE_PREFIX"].strip("/"),
                   baseline_key=environ["BASELINE_KEY"], window_hours=window_hours, max_records=max_records,
                   class_names=tuple(name.strip() for name in environ["CLASS_NAMES"].split(",") if name.strip()),
                   endpoint=environ["ENDPOINT_NAME"], namespace=environ["METRICS_NAMESPACE"])


SETTINGS = Settings.from_environment(os.environ)  # a bad value fails every invocation, by name
CONFIG = DriftConfig.load()  # the thresholds ship with the layer: the CLI's defaults
s3 = boto3.client("s3")
cloudwatch = boto3.client("cloudwatch")
logger = Logger()


def decode(payload: bytes) -> np.ndarray:
    """A captured request as the model saw it, by the one preprocessing (ImagingLayer)."""
    return np.asarray(to_model_input(payload), dtype=np.uint8)


def load_baseline(s3_client: Any, bucket: str, key: str) -> Baseline:
    """The baseline at s3://bucket/key. The role may read that key but may list only the capture prefix, and S3
    answers a missing key with 403 AccessDenied to a caller that may not list the bucket (404 only to one that may):
    on AWS a missing baseline is AccessDenied, so both name it."""
    uri = f"s3://{bucket}/{key}"
    try:
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in {"NoSuchKey", "404", "NoSuchBucket", "AccessDenied", "403"}:
            raise BaselineError(f"{uri} does not exist, or this function's role may not read it: upload the "
                                "model's baseline.json there "
                                "(.venv/bin/python -m monitoring upload-baseline)") from None
        raise
    return Baseline.parse(body, uri)


def read_window(s3_client: Any, settings: Settings, now: datetime) -> CaptureSet:
    """The valid records of the last `window_hours` (at most `max_records`, the most recent), images decoded."""
    since = now - timedelta(hours=settings.window_hours)
    files = s3_files(s3_client, settings.bucket, settings.prefix, since=since, until=now)
    capture = read_capture(files, class_names=settings.class_names, decode=decode)
    return capture.select(since=since, last=settings.max_records)


def _metric_value(value: float) -> float:
    return float(value) if abs(value) >= SMALLEST_METRIC else 0.0


def metric_data(result: DriftResult | None, capture: CaptureSet, settings: Settings,
                now: datetime) -> list[dict[str, Any]]:
    """The datums to publish: window size and malformed records always, per-feature results with a verdict."""
    endpoint = {"Name": "EndpointName", "Value": settings.endpoint}

    def datum(name: str, value: float, unit: str, feature: str | None = None) -> dict[str, Any]:
        dimensions = [endpoint, {"Name": "Feature", "Value": feature}] if feature else [endpoint]
        return {"MetricName": name, "Dimensions": dimensions, "Timestamp": now, "Value": _metric_value(value),
                "Unit": unit}

    data = [datum("Samples", len(capture.records), "Count"),
            datum("MalformedRecords", len(capture.malformed), "Count")]
    if result is not None:
        data.append(datum("DriftedFeatures", len(result.drifted), "Count"))
        for check in result.checks:
            data += [datum("PSI", check.psi, "None", check.feature),
                     datum("PValue", check.p_value, "None", check.feature),
                     datum("Drifted", int(check.drifted), "Count", check.feature)]
    return data


def publish(cloudwatch_client: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    for start in range(0, len(data), METRICS_PER_CALL):
        cloudwatch_client.put_metric_data(Namespace=namespace, MetricData=data[start:start + METRICS_PER_CALL])


def run_check(s3_client: Any, cloudwatch_client: Any, settings: Settings, now: datetime,
              config: DriftConfig = CONFIG) -> dict[str, Any]:
    """Read, check, publish; the verdict as a JSON-ready dict."""
    baseline = load_baseline(s3_client, settings.bucket, settings.baseline_key)
    baseline.require_classes(settings.class_names, "the stack (ClassNames)")
    capture = read_window(s3_client, settings, now)
    window = {"from": (now - timedelta(hours=settings.window_hours)).isoformat(), "to": now.isoformat(),
              "capture": f"s3://{settings.bucket}/{settings.prefix}/", "files": capture.files,
              "malformed": len(capture.malformed)}
    try:
        result: DriftResult | None = check_drift(baseline, Window.of(capture), config)
        verdict: dict[str, Any] = result.as_dict() if result else {}
    except InsufficientDataError as error:
        result = None
        verdict = {"verdict": "no verdict", "samples": len(capture.records), "reason": str(error),
                   "baseline_model_sha256": baseline.model_sha256}
    publish(cloudwatch_client, settings.namespace, metric_data(result, capture, settings, now))
    return {**verdict, "window": window, "malformed_examples": capture.malformed[:10]}


@logger.inject_lambda_context
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Scheduled by EventBridge Scheduler; the event carries nothing the check needs."""
    outcome = run_check(s3, cloudwatch, SETTINGS, datetime.now(UTC))
    logger.info("drift checked", extra={"verdict": outcome["verdict"], "samples": outcome["samples"],
                                        "drifted": outcome.get("drifted", []), "window": outcome["window"],
                                        "baseline_model_sha256": outcome["baseline_model_sha256"]})
    return outcome
