"""`python -m workflow run` on a tiny labelled folder: every input accounted for, services stopped."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from common import settings
from testkit.images import labelled_folder
from tests.support import run_main
from workflow.cli import cli
from workflow.cli import main as workflow_main


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("workflow")
    images = labelled_folder(root / "images", per_class=10, classes=settings.class_names())
    args = ["run", "--source", str(images), "--out", str(root / "out"), "--members", "1", "--epochs", "2",
            "--concurrency", "4", "--audit-rate", "1"]
    CliRunner().invoke(cli, args)
    (root / "out" / "bucket" / "labels").mkdir()  # a person labelled between the runs
    (root / "out" / "bucket" / "labels" / "earlier.jsonl").write_text("a person's label\n")
    result = CliRunner().invoke(cli, args)  # a second run in the same folder must not count the first one's traffic
    return result, root / "out"


def test_the_run_succeeds_and_accounts_for_every_test_image(workflow_run):
    result, out = workflow_run
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    manifest = (out / "dataset" / "manifest.csv").read_text().splitlines()[1:]
    test_images = [line for line in manifest if ",test," in line]
    assert summary["executions"] == len(test_images) > 0
    assert summary["succeeded"] + summary["review"] + summary["failed"] + summary["aborted"] == summary["executions"]
    assert summary["failed"] == summary["aborted"] == 0
    assert summary["accuracy_of_model"] is not None
    # every decision reached the local EventBridge, once
    assert summary["events"] == {"VehicleClassified": summary["succeeded"], "VehicleNeedsReview": summary["review"]}


def test_the_bucket_is_left_on_disk_for_the_review_page(workflow_run):
    result, out = workflow_run
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(path.read_text()) for path in sorted((out / "bucket" / "review").glob("*.json"))]
    assert len(records) == summary["review"] > 0  # this run's records only: the first run's were replaced
    for record in records:
        assert (out / "bucket" / record["s3_key"]).read_bytes() == (out / "dataset" / record["s3_key"]).read_bytes()
    assert (out / "bucket" / "labels" / "earlier.jsonl").read_text() == "a person's label\n"  # people's work is kept
    hint = f"review queue: .venv/bin/python -m review serve --source {out / 'bucket'}"  # runs as printed
    assert hint in " ".join(result.output.split())


def test_every_answered_request_was_captured(workflow_run):
    _, out = workflow_run
    summary = json.loads((out / "summary.json").read_text())
    records = [line for path in (out / "data_capture").rglob("*.jsonl") for line in path.read_text().splitlines()]
    assert len(records) == summary["executions"]


def test_the_scheduled_drift_check_ran_on_the_runs_capture(workflow_run):
    result, out = workflow_run
    summary = json.loads((out / "summary.json").read_text())
    drift = summary["drift_check"]
    assert drift["function"] == "CheckDriftFunction" and drift["capture_files"] >= 1
    assert drift["verdict"] == "no verdict" and drift["samples"] == summary["executions"]  # a few test images
    assert drift["metrics_published"] == 2  # Samples and MalformedRecords: no per-feature verdict without 50
    flat = " ".join(result.output.split())
    assert f"drift check (CheckDriftFunction, as scheduled on AWS): no verdict over {summary['executions']} " in flat
    report = json.loads((out / "report" / "summary.json").read_text())
    assert report["inferences"] == summary["executions"] and report["verdict"]["state"] in {"healthy", "degraded"}


def test_the_run_ends_with_the_reports_verdict_in_words_and_in_its_summary(workflow_run):
    result, out = workflow_run
    summary = json.loads((out / "summary.json").read_text())
    report = json.loads((out / "report" / "summary.json").read_text())
    assert list(summary)[0] == "verdict"  # at the top of out/summary.json
    assert summary["verdict"] == {**report["verdict"], "report": str(out / "report" / "report.html")}
    verdict = summary["verdict"]
    # 2 epochs on 16 images: no test image reaches the 0.93 threshold, all go to review, over the 30% alarm limit
    # (fewer than 50 inferences: no drift verdict)
    assert (report["below_threshold"], verdict["state"]) == (1.0, "degraded") and verdict["recommendation"]
    assert any(reason.startswith(f"{report['below_threshold']:.1%} of inferences fell below") and
               "LowConfidenceAlarmRate" in reason for reason in verdict["reasons"])
    if report.get("accuracy_of_passed") is not None:
        assert any("of automatic decisions were wrong" in reason and "target precision" in reason
                   for reason in verdict["reasons"])
    ending = [line.strip() for line in result.output.splitlines()][-(len(verdict["reasons"]) + 2):]
    assert ending == [f"verdict: {verdict['state'].upper()} (this run's executions, and the monitoring report on its "
                      f"traffic: {verdict['report']})", *(f"- {reason}" for reason in verdict["reasons"]),
                      f"- {verdict['recommendation']}"]


def dataset_with_a_test_image(root: Path, data: bytes) -> tuple[Path, str]:
    """A dataset as `workflow run` builds it in OUT/dataset, its first test image replaced by `data`."""
    from data_prep.dataset.build import build_dataset

    images = labelled_folder(root / "images", per_class=10, classes=settings.class_names())
    build_dataset(images, settings.class_names(), root / "out" / "dataset", test_fraction=0.2)
    first = sorted((root / "out" / "dataset" / "test").iterdir())[0]
    first.write_bytes(data)
    return root / "out", first.name


def too_many_bytes() -> bytes:
    """A real PNG over the template's MAX_IMAGE_BYTES (5 MiB): noise does not compress."""
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (1400, 1400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG", compress_level=1)
    assert len(buffer.getvalue()) > 5 * 1024 * 1024
    return buffer.getvalue()


def test_an_execution_that_failed_unexpectedly_makes_the_run_degraded_and_exit_1(tiny_model, tmp_path):
    out, _ = dataset_with_a_test_image(tmp_path, too_many_bytes())
    result = CliRunner().invoke(cli, ["run", "--model-dir", str(tiny_model), "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert (result.exit_code, summary["executions"], summary["failed_by_error"]) == (1, 2, {"ImageTooLargeError": 1})
    failed = "FAILED: 1 of 2 executions failed unexpectedly (ImageTooLargeError 1)"
    assert summary["verdict"]["state"] == "degraded" and summary["verdict"]["reasons"][0] == failed
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[lines.index(f"- {failed}") - 1].startswith("verdict: DEGRADED (this run's executions")


def test_a_truncated_test_image_is_one_named_line_and_exit_2_before_anything_runs(tiny_model, tmp_path, monkeypatch,
                                                                                  capsys):
    from testkit.images import png_bytes

    out, name = dataset_with_a_test_image(tmp_path, png_bytes(seed=3)[:-40])
    result = run_main(workflow_main, ["run", "--model-dir", str(tiny_model), "--out", str(out)],
                      monkeypatch=monkeypatch, capsys=capsys)
    assert (result.status, result.stdout) == (2, "")
    assert result.stderr_lines[-1] == (
        f"DatasetImageError: {out / 'dataset' / 'test' / name} in the dataset's manifest is not a readable image (the "
        "PNG image could not be decoded: image file is truncated): rebuild the dataset with "
        "`.venv/bin/python -m data_prep transform`")
    assert not (out / "data_capture").exists() and not (out / "summary.json").exists()


def test_every_confident_decision_is_audited_at_rate_1_and_the_scheduled_quality_check_ran(workflow_run):
    result, out = workflow_run
    summary = json.loads((out / "summary.json").read_text())
    audits = [json.loads(path.read_text()) for path in sorted((out / "bucket" / "audit").glob("*.json"))]
    assert len(audits) == summary["succeeded"]  # this run's: the first run's records were replaced
    assert all(record["audit"] is True and record["audit_rate"] == 1 for record in audits)
    quality = summary["quality_check"]
    assert (quality["function"], quality["decisions"]["audits"], quality["decisions"]["low_confidence"]) == (
        "CheckQualityFunction", summary["succeeded"], summary["review"])
    assert quality["verdict"] == "too few audits" and quality["audited"] == 0  # nobody has labelled them yet
    assert quality["problems"]["malformed_labels"] == 1  # labels/earlier.jsonl is not a Ground Truth line
    assert quality["alarms"]["ModelQualityAlarm"]["state"] == "OK"  # no labelled audit: no datapoint, not breaching
    assert quality["alarms"]["AuditBacklogAlarm"]["state"] == "OK"  # waiting for minutes, not AuditBacklogHours
    flat = " ".join(result.output.split())
    assert (f"quality check (CheckQualityFunction, as scheduled on AWS) on {summary['succeeded']} audits: too few "
            "audits to say: 0 audited decisions with a label; ") in flat
    assert "ModelQualityAlarm OK, AuditBacklogAlarm OK" in flat


@pytest.mark.parametrize("value", ["1.5", "-0.1", "often"])
def test_a_bad_audit_rate_is_one_line_and_exit_2_before_anything_runs(value, tmp_path, monkeypatch, capsys):
    result = run_main(workflow_main, ["run", "--audit-rate", value, "--out", str(tmp_path / "out")],
                      monkeypatch=monkeypatch, capsys=capsys)
    assert (result.status, result.stdout) == (2, "")
    assert result.stderr_lines == [f"AuditRateError: --audit-rate must be a number from 0 to 1, got {value!r}"]
    assert not (tmp_path / "out").exists()


def test_lambda_logs_and_model_are_kept(workflow_run):
    _, out = workflow_run
    assert (out / "model" / "model.onnx").exists()
    assert (out / "lambda-logs" / "ClassifyImageFunction.log").read_text().count('"image classified"') > 0


def test_services_are_stopped_after_the_run(workflow_run):
    result, _ = workflow_run
    ports = [int(word.rsplit(":", 1)[1].rstrip(";")) for word in result.output.split()
             if word.startswith("http://127.0.0.1:")]
    assert ports
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"


def test_demo_prints_a_succeeded_and_a_low_confidence_execution(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.output
    assert "FAILED" in result.output and "LowConfidenceError" in result.output
    flat = " ".join(result.output.split())  # rich wraps long lines at 80 columns off a terminal
    assert "review record s3://scones-offline/review/" in flat
