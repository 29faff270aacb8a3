"""check-drift on moto S3 and CloudWatch: the window it reads, the verdict, the metrics, and its named failures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from common.artefacts import write_baseline
from driftcheck.errors import BaselineError, ClassSetMismatchError
from functions.check_drift import app
from monitoring.baseline import build_baseline
from testkit.capture import CLASSES, images, probabilities, write_capture
from tests.support import load_event

NOW = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)
BASELINE_MODEL = "ba5e" * 16  # the model the uploaded baseline was written with
SETTINGS = app.Settings(bucket="data", prefix="data_capture/scones-image-classifier",
                        baseline_key="monitoring/baseline.json", window_hours=1, max_records=10_000,
                        class_names=tuple(CLASSES), endpoint="scones-image-classifier",
                        namespace="SconesUnlimited/ModelDrift")


@pytest.fixture(scope="module")
def baseline_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    return write_baseline(folder, {**build_baseline(images(400, 10), probabilities(200, 10), CLASSES),
                                   "model_sha256": BASELINE_MODEL})


@pytest.fixture
def aws(baseline_file):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="monitoring/baseline.json", Body=baseline_file.read_bytes())
        yield s3, boto3.client("cloudwatch", region_name="us-east-1")


def upload_capture(s3, tmp_path: Path, count: int, *, seed: int, start: datetime, brightness: float = 0.5,
                   bucket: str = "data") -> None:
    folder = tmp_path / f"capture-{seed}"
    write_capture(folder, images(count, seed, brightness), probabilities(count, seed), per_file=50, start=start)
    for path in folder.rglob("*.jsonl"):
        s3.put_object(Bucket=bucket, Key=f"data_capture/{path.relative_to(folder).as_posix()}", Body=path.read_bytes())


def metric(cloudwatch, name: str, feature: str | None = None) -> float | None:
    dimensions = [{"Name": "EndpointName", "Value": "scones-image-classifier"}]
    if feature:
        dimensions.append({"Name": "Feature", "Value": feature})
    points = cloudwatch.get_metric_statistics(Namespace="SconesUnlimited/ModelDrift", MetricName=name,
                                              Dimensions=dimensions, StartTime=NOW - timedelta(minutes=5),
                                              EndTime=NOW + timedelta(minutes=5), Period=60,
                                              Statistics=["Maximum"])["Datapoints"]
    return points[0]["Maximum"] if points else None


def test_brighter_traffic_in_the_window_is_drift_and_each_feature_is_published(aws, tmp_path):
    s3, cloudwatch = aws
    upload_capture(s3, tmp_path, 200, seed=1, start=NOW - timedelta(minutes=40), brightness=0.75)
    outcome = app.run_check(s3, cloudwatch, SETTINGS, NOW)
    assert outcome["verdict"] == "drift" and outcome["samples"] == 200
    assert outcome["baseline_model_sha256"] == BASELINE_MODEL  # whose baseline the verdict is against
    assert outcome["drifted"] == ["brightness", "red", "green", "blue"]
    assert outcome["window"]["files"] == 4 and outcome["window"]["malformed"] == 0
    assert metric(cloudwatch, "DriftedFeatures") == 4 and metric(cloudwatch, "Samples") == 200
    assert metric(cloudwatch, "Drifted", "brightness") == 1 and metric(cloudwatch, "Drifted", "class_mix") == 0
    (brightness,) = [c for c in outcome["checks"] if c["feature"] == "brightness"]
    assert metric(cloudwatch, "PSI", "brightness") == pytest.approx(brightness["psi"])
    assert metric(cloudwatch, "PValue", "confidence") is not None


def test_only_the_window_is_read_older_capture_is_not(aws, tmp_path):
    s3, cloudwatch = aws
    upload_capture(s3, tmp_path, 200, seed=2, start=NOW - timedelta(hours=5), brightness=0.75)  # old, bright
    upload_capture(s3, tmp_path, 120, seed=3, start=NOW - timedelta(minutes=20))  # recent, like the baseline
    outcome = app.run_check(s3, cloudwatch, SETTINGS, NOW)
    assert outcome["verdict"] == "no drift" and outcome["samples"] == 120 and outcome["window"]["files"] == 3
    assert metric(cloudwatch, "DriftedFeatures") == 0


def test_a_quiet_window_gives_no_verdict_and_publishes_the_sample_count_only(aws, tmp_path):
    s3, cloudwatch = aws
    upload_capture(s3, tmp_path, 10, seed=4, start=NOW - timedelta(minutes=5))
    outcome = app.run_check(s3, cloudwatch, SETTINGS, NOW)
    assert outcome["verdict"] == "no verdict" and outcome["samples"] == 10
    assert outcome["baseline_model_sha256"] == BASELINE_MODEL
    assert outcome["reason"].startswith("10 valid inferences in the window, fewer than the 50")
    assert metric(cloudwatch, "Samples") == 10 and metric(cloudwatch, "DriftedFeatures") is None


def test_a_window_without_traffic_gives_no_verdict_rather_than_crash(aws):
    s3, cloudwatch = aws  # the capture prefix is empty: a quiet hour, or an endpoint that has not served yet
    outcome = app.run_check(s3, cloudwatch, SETTINGS, NOW)
    assert (outcome["verdict"], outcome["samples"], outcome["window"]["files"]) == ("no verdict", 0, 0)
    assert outcome["reason"].startswith("0 valid inferences in the window, fewer than the 50")
    assert metric(cloudwatch, "Samples") == 0 and metric(cloudwatch, "DriftedFeatures") is None


def test_a_missing_baseline_fails_by_name(aws):
    s3, cloudwatch = aws
    s3.delete_object(Bucket="data", Key="monitoring/baseline.json")
    with pytest.raises(BaselineError, match="^s3://data/monitoring/baseline.json does not exist, or this "
                                            "function.s role may not read it: upload"):
        app.run_check(s3, cloudwatch, SETTINGS, NOW)


def test_a_baseline_of_other_classes_than_the_stack_is_refused(aws):
    s3, cloudwatch = aws
    with pytest.raises(ClassSetMismatchError, match=f"the baseline's classes are {', '.join(CLASSES)} but the stack"):
        app.run_check(s3, cloudwatch, replace(SETTINGS, class_names=(*CLASSES, "scooter")), NOW)


def test_the_environment_is_validated_by_name():
    environment = {"CAPTURE_BUCKET": "b", "CAPTURE_PREFIX": "/p/", "BASELINE_KEY": "k", "WINDOW_HOURS": "2",
                   "MAX_RECORDS": "5", "CLASS_NAMES": "a, b", "ENDPOINT_NAME": "e", "METRICS_NAMESPACE": "n"}
    assert app.Settings.from_environment(environment) == app.Settings("b", "p", "k", 2, 5, ("a", "b"), "e", "n")
    with pytest.raises(app.ConfigurationError, match="^missing from the environment: BASELINE_KEY$"):
        app.Settings.from_environment({**environment, "BASELINE_KEY": " "})
    with pytest.raises(app.ConfigurationError, match="must be at least 1"):
        app.Settings.from_environment({**environment, "WINDOW_HOURS": "0"})
    with pytest.raises(app.ConfigurationError, match="must be integers"):
        app.Settings.from_environment({**environment, "MAX_RECORDS": "many"})


def test_the_handler_runs_on_the_sample_event_with_the_template_environment(tmp_path, baseline_file, lambda_context):
    settings = app.SETTINGS  # from the environment template.yaml gives the function (tests/conftest.py)
    assert (settings.prefix, settings.baseline_key) == ("data_capture/scones-image-classifier",
                                                         "monitoring/baseline.json")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=settings.bucket)
        s3.put_object(Bucket=settings.bucket, Key=settings.baseline_key, Body=baseline_file.read_bytes())
        upload_capture(s3, tmp_path, 60, seed=5, start=datetime.now(UTC) - timedelta(minutes=3),
                       bucket=settings.bucket)
        outcome = app.lambda_handler(load_event("check_drift.json"), lambda_context)
    assert outcome["verdict"] == "no drift" and outcome["samples"] == 60
