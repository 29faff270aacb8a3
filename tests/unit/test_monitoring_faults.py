"""Monitoring fails closed: every way the check cannot run on its input is exit 2 with one line, never "0 inferences"
and exit 0 and never exit 1 (which means drift); a bug is exit 4 with its traceback; records that are not this model's
traffic are listed, not fatal."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from common.artefacts import write_baseline, write_model_metadata
from common.settings import REPO_ROOT
from monitoring.baseline import build_baseline
from monitoring.capture import read_capture
from monitoring.cli import cli
from testkit.capture import CLASSES, START, images, output_text, png, probabilities, record_line, write_capture

# The classes the test cases say a model has: the template's ClassNames, named as the commands name them.
CLASS_LIST = ", ".join(CLASSES)

SERVED_SHA256 = hashlib.sha256(b"the served bytes").hexdigest()


@pytest.fixture(scope="module")
def baseline_path(tmp_path_factory) -> Path:
    return write_baseline(tmp_path_factory.mktemp("baseline"),
                          {**build_baseline(images(400, 10), probabilities(200, 10), CLASSES),
                           "model_sha256": SERVED_SHA256})


@pytest.fixture(scope="module")
def steady_capture(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("steady")
    write_capture(folder, images(120, 11), probabilities(120, 11), per_file=60)
    return folder


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def add_lines(folder: Path, lines: list[str]) -> Path:
    path = next(folder.rglob("*.jsonl"))
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    return path


def test_drift_on_a_path_that_does_not_exist_cannot_run(baseline_path, tmp_path):
    result = invoke("drift", "--capture", str(tmp_path / "nowhere"), "--baseline", str(baseline_path))
    assert result.exit_code == 2
    assert one_line(result.stderr) == (f"CaptureNotFoundError: {tmp_path / 'nowhere'} does not exist: give the "
                                       "endpoint's capture folder or an s3:// prefix")


def test_drift_on_a_folder_without_capture_files_or_on_another_file_cannot_run(baseline_path, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    empty = invoke("drift", "--capture", str(tmp_path / "empty"), "--baseline", str(baseline_path))
    other = invoke("drift", "--capture", str(tmp_path / "notes.txt"), "--baseline", str(baseline_path))
    assert (empty.exit_code, other.exit_code) == (2, 2)
    assert one_line(empty.stderr).startswith(f"CaptureNotFoundError: {tmp_path / 'empty'} holds no capture files")
    assert one_line(other.stderr).startswith(f"CaptureNotFoundError: {tmp_path / 'notes.txt'} is a file but not a "
                                             "capture file")


def test_too_few_inferences_for_a_verdict_cannot_run(baseline_path, tmp_path):
    write_capture(tmp_path, images(12, 3), probabilities(12, 3))
    result = invoke("drift", "--capture", str(tmp_path), "--baseline", str(baseline_path))
    assert result.exit_code == 2
    assert one_line(result.stderr) == ("InsufficientDataError: 12 valid inferences in the window, fewer than the 50 a "
                                       "verdict needs (min_samples): no verdict")


def test_an_unusable_baseline_cannot_run(steady_capture, baseline_path, tmp_path):
    broken = tmp_path / "baseline.json"
    document = json.loads(baseline_path.read_text())
    del document["features"]
    broken.write_text(json.dumps(document))
    result = invoke("drift", "--capture", str(steady_capture), "--baseline", str(broken))
    assert result.exit_code == 2
    assert one_line(result.stderr) == f"BaselineError: {broken}: features is missing"


@pytest.mark.parametrize("command,broken", [
    ("drift", "monitoring.drift.drift_of"),
    ("report", "monitoring.report.write_report"),
    ("quality", "monitoring.quality.assess_source"),
    ("upload-baseline", "monitoring.baseline.load_baseline"),
])
def test_a_crash_is_a_bug_exit_4_never_2_could_not_run_nor_1_drift(command, broken, steady_capture, baseline_path,
                                                                    tmp_path, monkeypatch, capsys):
    from monitoring.cli import main
    from tests.support import run_main

    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(broken, crash)
    arguments = {"drift": ["--capture", str(steady_capture), "--baseline", str(baseline_path)],
                 "report": ["--capture", str(steady_capture), "--out", str(tmp_path / "report")],
                 "quality": ["--source", str(tmp_path)],
                 "upload-baseline": ["--baseline", str(baseline_path), "--bucket", "scones-data"]}[command]
    result = run_main(main, [command, *arguments], monkeypatch=monkeypatch, capsys=capsys,
                      environment={"AWS_REGION": "us-east-1"})
    assert (result.status, result.stdout) == (4, "")
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr_lines[-2:] == ["RuntimeError: boom", "unexpected error (a bug, not your input): RuntimeError; "
                                                              "the traceback is above"]


def test_the_real_command_line_exits_2_on_a_missing_path_and_0_without_drift(steady_capture, baseline_path,
                                                                               tmp_path):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / p) for p in
                                                               (".", "layers/imaging", "layers/driftcheck"))}

    def run(capture: Path, debug: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "monitoring", "drift", "--capture", str(capture), "--baseline",
                               str(baseline_path)], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={**environment, "SCONES_DEBUG": "1"} if debug else environment)

    missing, steady = run(tmp_path / "nowhere"), run(steady_capture)
    assert missing.returncode == 2 and missing.stdout == ""
    assert one_line(missing.stderr).startswith("CaptureNotFoundError:")
    assert steady.returncode == 0 and one_line(steady.stderr) == (f"no drift over 120 inferences (against the "
                                                                  f"baseline of model sha256 {SERVED_SHA256})")
    # asking for the traceback must not turn "could not run" into 1, which means drift
    debugged = run(tmp_path / "nowhere", debug=True)
    assert debugged.returncode == 2 and debugged.stderr.startswith("Traceback (most recent call last):")
    assert debugged.stderr.splitlines()[-1].startswith("driftcheck.errors.CaptureNotFoundError:")


def test_records_that_are_not_this_models_traffic_are_listed_as_malformed(tmp_path):
    write_capture(tmp_path, images(60, 4), probabilities(60, 4))
    image = base64.b64encode(png(images(1, 5)[0])).decode()
    path = add_lines(tmp_path, [
        record_line(data=base64.b64encode(b"%PDF-1.4 not an image").decode(), content_type="image/png"),
        record_line(data=image, output="[NaN, 0.5]"),
        record_line(data=image, output="[Infinity, 0]"),
        record_line(data=image, output="[true, false]"),
        record_line(data=image, output=output_text(classes=len(CLASSES) + 1)),
        record_line(data=image, output=json.dumps([0.7] * len(CLASSES))),
        record_line(data="@@@"),
    ])
    capture = read_capture(tmp_path, class_names=CLASSES)
    assert len(capture.records) == 60 and capture.images.shape == (60, 32, 32, 3)
    reasons = [line.removeprefix(f"{path}:").split(": ", 1)[1] for line in capture.malformed]
    assert reasons == [
        "NaN is not a JSON number",
        "Infinity is not a JSON number",
        "output holds a value that is not a finite number: [True, False]",
        f"output is not probabilities in [0, 1] summing to 1: {[0.7] * len(CLASSES)}",
        "captureData.endpointInput.data is not valid base64",
        f"{len(CLASSES) + 1} probabilities, but the model has {len(CLASSES)} classes",
        "the input (image/png, 21 bytes) is not an image: NotAnImageError: the 21 bytes are not a recognised image "
        "format",
    ]


def test_report_and_drift_run_past_malformed_records_and_the_page_lists_them(baseline_path, tmp_path):
    write_capture(tmp_path / "capture", images(60, 6), probabilities(60, 6))
    add_lines(tmp_path / "capture", [record_line(data=base64.b64encode(b"GIF89a-cut").decode()),
                                     record_line(data=base64.b64encode(png(images(1, 7)[0])).decode(),
                                                 output="[NaN, 1]")])
    report = invoke("report", "--capture", str(tmp_path / "capture"), "--out", str(tmp_path / "report"),
                    "--baseline", str(baseline_path))
    drift = invoke("drift", "--capture", str(tmp_path / "capture"), "--baseline", str(baseline_path), "--json")
    assert report.exit_code == 0, report.output
    assert drift.exit_code == 0 and json.loads(drift.stdout)["samples"] == 60
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (summary["inferences"], summary["malformed"]) == (60, 2)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Malformed capture records" in page and "is not an image: NotAnImageError" in page
    assert "NaN is not a JSON number" in page


def test_a_capture_from_a_model_with_other_classes_is_refused_by_name(baseline_path, tmp_path):
    lines = [record_line(data=base64.b64encode(png(image)).decode(), output=output_text(classes=len(CLASSES) + 1))
             for image in images(60, 8)]
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture" / "three.jsonl").write_text("\n".join(lines) + "\n")
    drift = invoke("drift", "--capture", str(tmp_path / "capture"), "--baseline", str(baseline_path))
    report = invoke("report", "--capture", str(tmp_path / "capture"), "--out", str(tmp_path / "report"))
    expected = (f"ClassSetMismatchError: 60 of 60 capture records carry {len(CLASSES) + 1} probabilities, but the "
                f"model's classes are {CLASS_LIST} ({len(CLASSES)}): the capture comes from another model")
    assert (drift.exit_code, report.exit_code) == (2, 2)
    assert one_line(drift.stderr) == expected and one_line(report.stderr) == expected
    assert not (tmp_path / "report" / "report.html").exists()


def test_a_baseline_of_other_classes_than_the_model_is_refused_by_name(steady_capture, baseline_path, tmp_path):
    model = tmp_path / "model"
    other = [*CLASSES[:-1], "scooter"]  # the last class swapped for one the template does not list
    write_model_metadata(model, {"class_names": other})
    result = invoke("drift", "--capture", str(steady_capture), "--baseline", str(baseline_path), "--model-dir",
                    str(model))
    assert result.exit_code == 2
    assert one_line(result.stderr) == (f"ClassSetMismatchError: the baseline's classes are {CLASS_LIST} but "
                                       f"the model in {model}'s are {', '.join(other)}: use the baseline written "
                                       "with this model")


def test_report_on_a_wrong_path_writes_nothing_and_exits_2(tmp_path):
    result = invoke("report", "--capture", str(tmp_path / "data/model"), "--out", str(tmp_path / "report"))
    assert result.exit_code == 2
    assert one_line(result.stderr) == (f"CaptureNotFoundError: {tmp_path / 'data/model'} does not exist: give the "
                                       "endpoint's capture folder or an s3:// prefix")
    assert not (tmp_path / "report").exists()


def test_report_takes_the_model_dirs_baseline_by_default(steady_capture, baseline_path, tmp_path):
    from common.model_archive import bind_baseline, sha256_file

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"the served bytes")
    metadata = {"class_names": CLASSES, "model_sha256": SERVED_SHA256}
    write_model_metadata(model, bind_baseline(model, json.loads(baseline_path.read_text()), metadata))
    result = invoke("report", "--capture", str(steady_capture), "--out", str(tmp_path / "report"), "--model-dir",
                    str(model), "--json", "--rescore", "0")  # not an ONNX file: nothing to re-score with
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == {"reference": str(model), "model_sha256": SERVED_SHA256, "archive": None,
                                "archive_sha256": None, "code_sha256": None,
                                "baseline_sha256": sha256_file(model / "baseline.json")}  # which bytes it is about
    assert summary["drift"]["verdict"] == "no drift" and summary["drift"]["samples"] == 120
    assert summary["drift"]["baseline_model_sha256"] == SERVED_SHA256
    assert summary["time_span"] == f"{START:%Y-%m-%d %H:%M:%S} to 2026-11-24 10:01:59 UTC"


def test_upload_baseline_validates_before_it_puts_the_file_where_the_function_reads_it(baseline_path, tmp_path):
    import boto3
    from moto import mock_aws

    broken = tmp_path / "baseline.json"
    broken.write_text("{}")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        refused = invoke("upload-baseline", "--baseline", str(broken), "--bucket", "data")
        uploaded = invoke("upload-baseline", "--baseline", str(baseline_path), "--bucket", "data")
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket="data").get("Contents", [])]
        body = s3.get_object(Bucket="data", Key="monitoring/baseline.json")["Body"].read()
    assert refused.exit_code == 2
    assert one_line(refused.stderr) == f"BaselineError: {broken}: class_names must list at least two class names"
    assert uploaded.exit_code == 0, uploaded.output
    assert keys == ["monitoring/baseline.json"] and body == baseline_path.read_bytes()
    assert uploaded.stdout.startswith(f"s3://data/monitoring/baseline.json of model sha256 {SERVED_SHA256} (classes "
                                      f"{CLASS_LIST})")


def test_the_report_names_the_model_and_says_whether_the_capture_came_from_its_bytes(tiny_model, tmp_path):
    """The page says which model it describes (sha256) and re-scores captured inputs with it: answers that differ
    by more than 1e-5 mean the capture did not come from these bytes."""
    from common.model_archive import sha256_file
    from common.onnx_model import OnnxModel

    sha = json.loads((tiny_model / "metadata.json").read_text())["model_sha256"]
    pixels = images(120, 21)
    write_capture(tmp_path / "served", pixels, OnnxModel(tiny_model).forward(pixels))
    write_capture(tmp_path / "other", pixels, probabilities(120, 21))
    pages = {}
    for name in ("served", "other"):
        result = invoke("report", "--capture", str(tmp_path / name), "--out", str(tmp_path / f"report-{name}"),
                        "--model", str(tiny_model), "--json", "--rescore", "40")
        assert result.exit_code == 0, result.output
        pages[name] = (json.loads(result.stdout), (tmp_path / f"report-{name}" / "report.html").read_text())
    summary, page = pages["served"]
    figures = summary["rescored"]["per_variant"]["AllTraffic"]
    assert (figures["sampled"], figures["differing"]) == (40, 0) and figures["max_difference"] <= 5e-7
    assert summary["rescored"]["matches"] and not any("re-scored" in line for line in summary["verdict"]["reasons"])
    assert f"<th scope='row'>Model (sha256)</th><td>{sha}</td>" in page
    assert f"<th scope='row'>Drift baseline of model (sha256)</th><td>{sha}</td>" in page
    assert "AllTraffic: 40 of 40 within 1e-05" in page
    assert summary["model"]["baseline_sha256"] == sha256_file(tiny_model / "baseline.json")
    summary, page = pages["other"]
    figures = summary["rescored"]["per_variant"]["AllTraffic"]
    assert figures["sampled"] == 40 and figures["differing"] == 40 and not summary["rescored"]["matches"]
    assert any(reason.startswith(f"40 of 40 re-scored inputs of variant AllTraffic were answered otherwise than model "
                                 f"sha256 {sha[:12]}... answers them") and reason.endswith(
        "its capture did not come from these bytes") for reason in summary["verdict"]["reasons"])
