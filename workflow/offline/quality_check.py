"""The scheduled quality check offline: template.yaml's CheckQualityFunction run on a bucket left on disk, and its
alarms evaluated on what it published.

A fresh offline runtime loads every function of the template with its template environment; the folder's
decision records (review/, audit/) and labels (labels/) go to moto S3 in the bucket DATA_BUCKET names; the
function is invoked through the local Lambda Invoke API, as EventBridge Scheduler invokes it on AWS, and
publishes to moto's CloudWatch; then ModelQualityAlarm, AuditBacklogAlarm and ClassQualityAlarm are evaluated on those
metrics
(workflow.offline.alarms). Their states are what the stack's alarms would be after this run on AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from common.settings import OFFLINE_REGION
from modelquality.records import AUDIT_PREFIX, LABELS_PREFIX, REVIEW_PREFIX
from workflow.offline.alarms import alarm_properties, alarm_state
from workflow.offline.runtime import OfflineRuntime

FUNCTION = "CheckQualityFunction"
ALARMS = ("ModelQualityAlarm", "AuditBacklogAlarm", "ClassQualityAlarm")
UNUSED_ENDPOINT = "http://127.0.0.1:9"  # the quality check never calls the model


def stage_for_quality_check(runtime: OfflineRuntime, bucket_dir: Path) -> int:
    """Put the folder's records and labels where the function's environment says the bucket is; the objects put."""
    bucket = runtime.functions[FUNCTION].environment["DATA_BUCKET"]
    if bucket != runtime.bucket:
        runtime.s3.create_bucket(Bucket=bucket)
    put = 0
    for prefix in (REVIEW_PREFIX, AUDIT_PREFIX, LABELS_PREFIX):
        folder = bucket_dir / prefix
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file() and not path.name.startswith("."):
                runtime.s3.put_object(Bucket=bucket, Key=path.relative_to(bucket_dir).as_posix(),
                                      Body=path.read_bytes())
                put += 1
    return put


def scheduled_checks_runtime(*, lambda_log_dir: Path | None = None,
                             parameter_overrides: Mapping[str, str] | None = None) -> OfflineRuntime:
    """An offline runtime for the scheduled functions (they never call the model, nor need the S3 trigger)."""
    return OfflineRuntime(UNUSED_ENDPOINT, trigger=False, lambda_log_dir=lambda_log_dir,
                          parameter_overrides=parameter_overrides)


def run_quality_function(bucket_dir: Path, *, lambda_log_dir: Path | None = None,
                         parameter_overrides: Mapping[str, str] | None = None,
                         runtime: OfflineRuntime | None = None) -> dict[str, Any]:
    """Invoke CheckQualityFunction on this bucket (in `runtime`, else a fresh one); its result with the alarms'
    states, or {"verdict": "error", ...}."""
    started = nullcontext(runtime) if runtime is not None else scheduled_checks_runtime(
        lambda_log_dir=lambda_log_dir, parameter_overrides=parameter_overrides)
    with started as runtime:
        objects = stage_for_quality_check(runtime, bucket_dir)
        payload, failed = runtime.invoke(FUNCTION)
        if failed:
            return {"function": FUNCTION, "verdict": "error", "error": payload.get("errorType"),
                    "message": payload.get("errorMessage"), "objects": objects}
        cloudwatch = boto3.client("cloudwatch", region_name=OFFLINE_REGION)
        now = datetime.now(UTC)
        alarms = {}
        for name in ALARMS:
            state, values = alarm_state(alarm_properties(runtime.template, name), cloudwatch, now)
            alarms[name] = {"state": state, "datapoints": values}
        return {"function": FUNCTION, **payload, "objects": objects, "alarms": alarms}
