"""`python -m monitoring quality`: the exit statuses the issue gives (0 consistent, 1 degraded naming the worst class, 2
too few audits naming how many more), the JSON field names, and the CLI error contract for bad input."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from common import settings
from monitoring.cli import main as monitoring_main
from tests.support import run_main
from tests.unit.test_model_quality import Mirror


def quality(args: list[str], monkeypatch, capsys):
    return run_main(monitoring_main, ["quality", *args], monkeypatch=monkeypatch, capsys=capsys)


def audited(mirror: Mirror, count: int, *, wrong_on: str | None = None) -> None:
    """`count` audited decisions, half of each class; with `wrong_on`, that class is read as the other one."""
    for index in range(count):
        truth = ("bicycle", "motorcycle")[index % 2]
        predicted = ("motorcycle" if truth == "bicycle" else "bicycle") if truth == wrong_on else truth
        mirror.decide(f"img-{index}", predicted, audit=True)
        mirror.label(f"img-{index}", truth)


def test_degraded_exits_1_and_names_the_worst_class_and_what_it_misreads(tmp_path, monkeypatch, capsys):
    mirror = Mirror(tmp_path / "bucket")
    audited(mirror, 40, wrong_on="motorcycle")

    result = quality(["--source", str(mirror.root), "--json"], monkeypatch, capsys)

    assert result.status == 1
    report = json.loads(result.stdout)
    assert (report["verdict"], report["worst_class"], report["audited"], report["precision"]) == (
        "degraded", "bicycle", 40, 0.5)
    assert len(report["precision_interval"]) == 2
    assert report["classes"]["bicycle"]["precision"] == 0.5 and report["classes"]["motorcycle"]["audited"] == 0
    assert result.stderr_lines == [
        "degraded: precision 0.500 [0.352, 0.648] on 40 audited decisions is below the target "
        f"{settings.target_precision()}; worst class: bicycle (0.500 on 40 audited); motorcycle read as bicycle 20 "
        "times"]  # by default, the template's TargetPrecision


def test_consistent_exits_0_and_too_few_exits_2_naming_how_many_more(tmp_path, monkeypatch, capsys):
    mirror = Mirror(tmp_path / "bucket")
    audited(mirror, 35)

    ok = quality(["--source", str(mirror.root), "--target-precision", "0.9"], monkeypatch, capsys)
    few = quality(["--source", str(mirror.root), "--target-precision", "0.99"], monkeypatch, capsys)

    assert ok.status == 0 and "all" in ok.stdout and "bicycle" in ok.stdout
    assert ok.stderr_lines == ["ok: precision 1.000 [0.901, 1.000] on 35 audited decisions is consistent with the "
                               "target 0.9"]
    assert few.status == 2
    assert few.stderr_lines == ["too few audits to say: 35 audited decisions with a label; 346 more needed (381 for a "
                                "target of 0.99)"]


def test_bad_input_is_counted_and_named_on_stderr_and_the_verdict_still_comes(tmp_path, monkeypatch, capsys):
    mirror = Mirror(tmp_path / "bucket")
    audited(mirror, 4)
    mirror.label("img-0", "motorcycle", name="a-second-opinion")
    (mirror.root / "labels" / "export.jsonl").write_text("not json\n")

    result = quality(["--source", str(mirror.root)], monkeypatch, capsys)

    assert result.status == 2
    image = json.loads((mirror.root / "audit" / "exec-0001.json").read_text())["content_sha256"]
    assert result.stderr_lines[:2] == [
        "bad input: malformed labels: 1 (labels/export.jsonl:1: not JSON (Expecting value))",
        f"bad input: conflicting labels: 1 ({image}: labelled motorcycle (labels/a-second-opinion.jsonl:1), bicycle "
        f"(labels/{image}.jsonl:1): left out)"]
    assert result.stderr_lines[-1].startswith("too few audits to say: 3 audited decisions with a label")


@pytest.mark.parametrize(("args", "line"), [
    (["--source", "no/such/folder"], "QualitySourceError: no/such/folder is not a folder: give s3://bucket or a "
                                     "folder that mirrors one (the OUT/bucket a `.venv/bin/python -m workflow run "
                                     "--out OUT` leaves)"),
    (["--source", "s3://bucket/labels/"], "QualitySourceError: s3://bucket/labels/: give the bucket alone "
                                          "(s3://bucket); its review/, audit/ and labels/ prefixes are read"),
    (["--since", "last tuesday"], "QualitySourceError: --since 'last tuesday' is not an ISO 8601 time (e.g. "
                                  "2026-11-24 or 2026-11-24T10:00Z)"),
])
def test_a_bad_source_or_time_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, line):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "bucket").mkdir(parents=True)
    result = quality(args, monkeypatch, capsys)
    assert (result.status, result.stdout, result.stderr_lines) == (2, "", [line])


def test_a_bad_target_is_clicks_usage_error(tmp_path, monkeypatch, capsys):
    result = quality(["--source", str(tmp_path), "--target-precision", "1.5"], monkeypatch, capsys)
    assert result.status == 2 and result.stderr_lines[-1].startswith("Error: Invalid value for '--target-precision'")


def test_an_s3_bucket_is_read_as_a_mirror_is(tmp_path, monkeypatch, capsys):
    mirror = Mirror(tmp_path / "bucket")
    audited(mirror, 6, wrong_on="bicycle")
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="scones-offline")
        for path in mirror.root.rglob("*"):
            if path.is_file():
                s3.put_object(Bucket="scones-offline", Key=path.relative_to(mirror.root).as_posix(),
                              Body=path.read_bytes())
        result = quality(["--source", "s3://scones-offline", "--json"], monkeypatch, capsys)
        missing = quality(["--source", "s3://no-such-bucket"], monkeypatch, capsys)
    local = quality(["--source", str(mirror.root), "--json"], monkeypatch, capsys)
    assert result.status == local.status == 1
    drop = {"source", "assessed_at"}
    assert {k: v for k, v in json.loads(result.stdout).items() if k not in drop} == {
        k: v for k, v in json.loads(local.stdout).items() if k not in drop}
    assert missing.status == 3 and missing.stderr_lines[-1].startswith("AWS error in ListObjectsV2: NoSuchBucket")


@pytest.mark.parametrize(("args", "error"), [
    (["--source", "no/such/folder"], "QualitySourceError"),
    (["--since", "last tuesday"], "QualitySourceError"),
    (["--target-precision", "1.5"], "UsageError"),
    (["--target-precision"], "UsageError"),
])
def test_under_json_a_failure_to_run_is_a_json_error_object_on_stdout(tmp_path, monkeypatch, capsys, args, error):
    """Exit 2 is both "too few audits" and "could not run": under --json the first prints the report (its verdict),
    the second an object naming the error, so a scheduler tells them apart without reading stderr."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "bucket").mkdir(parents=True)
    result = quality(["--json", *args], monkeypatch, capsys)
    answer = json.loads(result.stdout)
    assert (result.status, answer["error"]) == (2, error)
    assert set(answer) == {"error", "message"} and answer["message"]


def test_under_json_too_few_audits_is_the_report_with_its_verdict(tmp_path, monkeypatch, capsys):
    mirror = Mirror(tmp_path / "bucket")
    audited(mirror, 3)
    result = quality(["--json", "--source", str(mirror.root)], monkeypatch, capsys)
    report = json.loads(result.stdout)
    assert (result.status, report["verdict"], report["exit_status"], report["more_audits_needed"]) == (
        2, "too few audits", 2, 378)
    assert "error" not in report


def test_the_help_says_what_exit_2_means_both_ways(monkeypatch, capsys):
    result = quality(["--help"], monkeypatch, capsys)
    flat = " ".join(result.stdout.split())
    assert ("2 when there are too few labelled audits to say (the report's verdict is \"too few audits\", and how "
            "many more are needed is said) or when the check could not run (a wrong option, a missing folder or "
            "bucket") in flat
    assert "under --json, stdout then holds {\"error\": <its name>, \"message\": ...} instead of the report" in flat


def test_labels_outside_the_window_are_a_note_not_bad_input(tmp_path, monkeypatch, capsys):
    mirror = Mirror(tmp_path / "bucket")
    mirror.decide("old", "bicycle", audit=True, hour=8)
    mirror.label("old", "bicycle")
    result = quality(["--source", str(mirror.root), "--since", "2026-11-30T10:00Z"], monkeypatch, capsys)
    assert result.stderr_lines[0].startswith("note: labels outside window: 1 (labels/")
    assert not [line for line in result.stderr_lines if line.startswith("bad input")]
