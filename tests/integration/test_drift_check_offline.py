"""CheckDriftFunction through the offline runtime's Lambda Invoke API, with its template environment, on moto S3
and CloudWatch: what `python -m workflow run` does at its end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.artefacts import write_baseline
from monitoring.baseline import build_baseline
from testkit.capture import CLASSES, images, probabilities, write_capture
from workflow.offline.drift_check import run_drift_function


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    return write_baseline(tmp_path_factory.mktemp("model"),
                          build_baseline(images(400, 30), probabilities(200, 30), CLASSES))


def test_drifted_traffic_is_reported_and_every_metric_published(baseline, tmp_path):
    write_capture(tmp_path / "capture", images(120, 31, brightness=0.8), probabilities(120, 31), per_file=40,
                  start=datetime.now(UTC) - timedelta(minutes=10))
    outcome = run_drift_function(tmp_path / "capture", baseline, lambda_log_dir=tmp_path / "logs")
    assert outcome["function"] == "CheckDriftFunction" and outcome["capture_files"] == 3
    assert outcome["verdict"] == "drift" and outcome["samples"] == 120
    assert outcome["drifted"] == ["brightness", "red", "green", "blue"]
    assert outcome["metrics_published"] == 3 + 6 * 3  # Samples, MalformedRecords, DriftedFeatures; 3 per feature
    assert '"drift checked"' in (tmp_path / "logs" / "CheckDriftFunction.log").read_text()


def test_without_a_baseline_the_function_fails_by_name(tmp_path):
    write_capture(tmp_path / "capture", images(10, 32), probabilities(10, 32),
                  start=datetime.now(UTC) - timedelta(minutes=1))
    outcome = run_drift_function(tmp_path / "capture", tmp_path / "missing.json")
    assert outcome["verdict"] == "error" and outcome["error"] == "BaselineError"
    assert outcome["message"].startswith("s3://scones-offline/monitoring/baseline.json does not exist")
