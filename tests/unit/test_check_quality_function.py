"""check-quality on moto S3 and CloudWatch: the window it reads, the metrics it publishes (and those it leaves out
when they cannot be known), and its configuration refused by name."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from common import settings
from functions.check_quality import app
from modelquality.errors import WindowTooLargeError
from modelquality.stats import wilson_interval
from tests.support import load_event
from tests.unit.test_model_quality import CLASSES, Mirror, one_class_degraded

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SETTINGS = app.Settings(bucket="data", window_hours=168, max_records=20_000, target=0.99,
                        class_names=tuple(CLASSES), endpoint="scones-image-classifier",
                        namespace="SconesUnlimited/ModelQuality")


@pytest.fixture
def aws():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        yield s3, boto3.client("cloudwatch", region_name="us-east-1")


def upload(s3, mirror: Mirror) -> None:
    for path in mirror.root.rglob("*"):
        if path.is_file():
            s3.put_object(Bucket="data", Key=path.relative_to(mirror.root).as_posix(), Body=path.read_bytes())


def published(cloudwatch) -> dict[tuple[str, str | None], float]:
    """Every datum published: (metric, class or None) -> value."""
    values = {}
    for metric in cloudwatch.list_metrics(Namespace="SconesUnlimited/ModelQuality")["Metrics"]:
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dimensions["EndpointName"] == "scones-image-classifier"
        points = cloudwatch.get_metric_statistics(
            Namespace="SconesUnlimited/ModelQuality", MetricName=metric["MetricName"], Dimensions=metric["Dimensions"],
            StartTime=NOW - timedelta(minutes=5), EndTime=NOW + timedelta(minutes=5), Period=60,
            Statistics=["Maximum"])["Datapoints"]
        values[(metric["MetricName"], dimensions.get("Class"))] = points[0]["Maximum"]
    return values


def test_a_degraded_model_publishes_an_upper_bound_below_the_target_and_per_class_figures(aws, tmp_path):
    s3, cloudwatch = aws
    mirror = Mirror(tmp_path / "bucket")
    for index in range(40):
        mirror.decide(f"img-{index}", "bicycle", audit=True)  # motorcycles read as bicycles
        mirror.label(f"img-{index}", CLASSES[index % 2])
    mirror.decide("waiting", "motorcycle", audit=True, hour=9)
    mirror.decide("unsure", "motorcycle", audit=False)
    upload(s3, mirror)

    outcome = app.run_check(s3, cloudwatch, SETTINGS, NOW)

    assert (outcome["verdict"], outcome["worst_class"], outcome["audited"]) == ("degraded", "bicycle", 40)
    values = published(cloudwatch)
    assert values[("PrecisionUpperBound", None)] == wilson_interval(20, 40)[1]  # unrounded; below the target, 0.99
    assert values[("Precision", None)] == 0.5 and values[("Audited", None)] == 40
    assert values[("Precision", "bicycle")] == 0.5 and values[("Audited", "motorcycle")] == 0
    assert ("Precision", "motorcycle") not in values  # no audit of that class: nothing to publish, never 0
    assert values[("UnlabelledAudits", None)] == 1
    assert values[("OldestUnlabelledAuditHours", None)] == pytest.approx(3.0, abs=0.01)
    assert values[("AuditsNeeded", None)] == 381
    assert values[("ReviewRate", None)] == pytest.approx(1 / (1 + 41 / 0.02))


def test_an_empty_bucket_publishes_no_precision_and_no_backlog(aws):
    s3, cloudwatch = aws
    outcome = app.run_check(s3, cloudwatch, SETTINGS, NOW)
    assert outcome["verdict"] == "too few audits"
    values = published(cloudwatch)
    assert not [name for name, _ in values if name.startswith("Precision")]
    assert (values[("Audited", None)], values[("OldestUnlabelledAuditHours", None)]) == (0, 0)


def test_only_the_window_is_judged_and_at_most_max_records_of_the_newest(aws, tmp_path):
    s3, cloudwatch = aws
    mirror = Mirror(tmp_path / "bucket", day="2026-11-20")  # ten days before NOW: outside a 168-hour window
    mirror.decide("old", "bicycle", audit=True)
    mirror.label("old", "motorcycle")
    upload(s3, mirror)
    assert app.run_check(s3, cloudwatch, SETTINGS, NOW)["audited"] == 0
    assert app.run_check(s3, cloudwatch, replace(SETTINGS, window_hours=24 * 11), NOW)["audited"] == 1
    recent = Mirror(tmp_path / "recent", day="2026-11-30")
    recent.count = 100
    for index in range(3):
        recent.decide(f"new-{index}", "bicycle", audit=True)
        recent.label(f"new-{index}", "bicycle")
    upload(s3, recent)
    limited = app.run_check(s3, cloudwatch, replace(SETTINGS, window_hours=24 * 11, max_records=2), NOW)
    assert limited["decisions"]["audits"] == 2
    assert limited["problems"]["records_not_read"] == 1
    assert limited["problem_examples"]["records_not_read"] == [
        {"where": "audit/", "detail": "2 older records past the limit of 2 were not read"}]


@pytest.mark.parametrize(("environment", "message"), [
    ({}, "missing from the environment: DATA_BUCKET, WINDOW_HOURS, MAX_RECORDS, TARGET_PRECISION, CLASS_NAMES, "
         "ENDPOINT_NAME, METRICS_NAMESPACE"),
    ({"WINDOW_HOURS": "a week"}, "WINDOW_HOURS and MAX_RECORDS must be integers and TARGET_PRECISION a number"),
    ({"TARGET_PRECISION": "1.5"}, "WINDOW_HOURS and MAX_RECORDS must be at least 1, TARGET_PRECISION in (0, 1]"),
])
def test_a_bad_environment_is_refused_by_name(environment, message):
    good = {"DATA_BUCKET": "data", "WINDOW_HOURS": "168", "MAX_RECORDS": "20000", "TARGET_PRECISION": "0.99",
            "CLASS_NAMES": "bicycle,motorcycle", "ENDPOINT_NAME": "e", "METRICS_NAMESPACE": "n"}
    with pytest.raises(app.ConfigurationError) as refused:
        app.Settings.from_environment({**good, **environment} if environment else {})
    assert str(refused.value).startswith(message)


def test_the_handler_runs_on_the_scheduled_event_with_the_templates_settings(aws, lambda_context):
    s3, _ = aws
    s3.create_bucket(Bucket=app.SETTINGS.bucket)  # the template's DATA_BUCKET: the SageMaker default bucket
    outcome = app.lambda_handler(load_event("check_quality.json"), lambda_context)
    assert (outcome["verdict"], outcome["source"]) == ("too few audits", "s3://sagemaker-us-east-1-123456789012")
    assert (app.SETTINGS.window_hours, app.SETTINGS.target, app.SETTINGS.namespace) == (
        168, settings.target_precision(), "SconesUnlimited/ModelQuality")


def test_one_degraded_class_under_a_good_overall_figure_publishes_its_upper_bound(aws, tmp_path):
    """392 right bicycles, 8 motorcycle decisions of which 4 are wrong: overall 0.99 [0.9746, 0.9961] is consistent
    with the target, motorcycle's upper bound (0.785) is far below it and is what WorstClassPrecisionUpperBound says."""
    s3, cloudwatch = aws
    upload(s3, one_class_degraded(Mirror(tmp_path / "bucket")))

    outcome = app.run_check(s3, cloudwatch, SETTINGS, NOW)

    assert (outcome["verdict"], outcome["worst_class"]) == ("degraded", "motorcycle")
    assert outcome["precision_interval"][1] == round(wilson_interval(396, 400)[1], 4)  # ModelQualityAlarm stays OK
    assert published(cloudwatch)[("WorstClassPrecisionUpperBound", None)] == wilson_interval(4, 8)[1]


def test_no_class_with_two_wrong_audits_publishes_no_worst_class_bound(aws, tmp_path):
    s3, cloudwatch = aws
    mirror = Mirror(tmp_path / "bucket")
    mirror.decide("one", "motorcycle", audit=True)
    mirror.label("one", "bicycle")  # one wrong audit of a class proves nothing by itself
    upload(s3, mirror)
    app.run_check(s3, cloudwatch, SETTINGS, NOW)
    assert ("WorstClassPrecisionUpperBound", None) not in published(cloudwatch)


class Countdown:
    """Seconds left that run out after `calls` looks at the clock: a deadline without a clock."""

    def __init__(self, calls: int) -> None:
        self.calls = calls

    def __call__(self) -> float:
        self.calls -= 1
        return 60.0 if self.calls >= 0 else 0.0


def labelled_audits(tmp_path, count: int) -> Mirror:
    """`count` audited bicycle decisions, each labelled right."""
    mirror = Mirror(tmp_path / "bucket")
    for index in range(count):
        mirror.decide(f"img-{index}", "bicycle", audit=True)
        mirror.label(f"img-{index}", "bicycle")
    return mirror


def test_a_window_too_large_for_one_run_fails_by_name_instead_of_timing_out(aws, tmp_path):
    s3, cloudwatch = aws
    upload(s3, labelled_audits(tmp_path, 5))
    with pytest.raises(WindowTooLargeError) as refused:
        app.run_check(s3, cloudwatch, SETTINGS, NOW, time_left=Countdown(4))
    assert str(refused.value).startswith("the check ran out of time in s3://data after listing ")
    assert "QualityWindowHours" in str(refused.value) and "docs/monitoring.md" in str(refused.value)
    assert cloudwatch.list_metrics(Namespace="SconesUnlimited/ModelQuality")["Metrics"] == []  # no half verdict


def test_the_check_reads_in_parallel_and_says_how_many_keys_it_listed(aws, tmp_path):
    s3, cloudwatch = aws
    mirror = labelled_audits(tmp_path, 30)
    mirror.decide("unsure", "motorcycle", audit=False)
    upload(s3, mirror)
    outcome = app.run_check(s3, cloudwatch, SETTINGS, NOW, time_left=lambda: 60.0)
    assert (outcome["audited"], outcome["listed_keys"]) == (30, 61)  # 30 audits, 1 review record, 30 labels
    assert published(cloudwatch)[("ListedKeys", None)] == 61
