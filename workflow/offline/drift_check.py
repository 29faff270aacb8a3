"""The scheduled drift check offline: template.yaml's CheckDriftFunction run on an offline run's capture.

A fresh offline runtime loads every function of the template with its template environment; the
run's capture goes to moto S3 under the function's CAPTURE_PREFIX and the model's baseline.json to
its BASELINE_KEY, in the bucket its CAPTURE_BUCKET names; then the function is invoked through the
local Lambda Invoke API, as EventBridge Scheduler invokes it on AWS, and publishes its metrics to
moto's CloudWatch. Its verdict (or its error, by name) is what the next scheduled run on AWS would
report for this traffic.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import boto3

from common.settings import OFFLINE_REGION
from workflow.offline.runtime import OfflineRuntime

FUNCTION = "CheckDriftFunction"
UNUSED_ENDPOINT = "http://127.0.0.1:9"  # the drift check never calls the model


def stage_for_drift_check(runtime: OfflineRuntime, capture_dir: Path, baseline: Path) -> int:
    """Put the capture and the baseline where the function's environment says they are; the number of files."""
    environment = runtime.functions[FUNCTION].environment
    bucket, prefix = environment["CAPTURE_BUCKET"], environment["CAPTURE_PREFIX"].strip("/")
    endpoint_folder = capture_dir / environment["ENDPOINT_NAME"]
    files = sorted(endpoint_folder.rglob("*.jsonl")) if endpoint_folder.is_dir() else []
    for path in files:
        runtime.s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(endpoint_folder).as_posix()}",
                              Body=path.read_bytes())
    if baseline.is_file():  # without it the function fails by name (BaselineError), as it would on AWS
        runtime.s3.put_object(Bucket=bucket, Key=environment["BASELINE_KEY"], Body=baseline.read_bytes())
    return len(files)


def run_drift_function(capture_dir: Path, baseline: Path, *, lambda_log_dir: Path | None = None,
                       runtime: OfflineRuntime | None = None) -> dict[str, Any]:
    """Invoke CheckDriftFunction on this capture (in `runtime`, else a fresh one); its result, or
    {"verdict": "error", "error": <name>, ...}."""
    started = nullcontext(runtime) if runtime is not None else OfflineRuntime(UNUSED_ENDPOINT, trigger=False,
                                                                               lambda_log_dir=lambda_log_dir)
    with started as runtime:
        files = stage_for_drift_check(runtime, capture_dir, baseline)
        payload, failed = runtime.invoke(FUNCTION)
        if failed:
            return {"function": FUNCTION, "verdict": "error", "error": payload.get("errorType"),
                    "message": payload.get("errorMessage"), "capture_files": files}
        namespace = runtime.functions[FUNCTION].environment["METRICS_NAMESPACE"]
        metrics = boto3.client("cloudwatch", region_name=OFFLINE_REGION).list_metrics(Namespace=namespace)["Metrics"]
        return {"function": FUNCTION, **payload, "capture_files": files, "metrics_published": len(metrics)}
