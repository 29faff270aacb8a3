"""Monitoring on real-format capture files: reader, report, drift."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

from common import settings
from driftcheck.baseline import Baseline
from driftcheck.errors import InsufficientDataError
from monitoring.baseline import build_baseline, image_features
from monitoring.capture import read_capture
from monitoring.drift import DriftConfig, drift_of, psi
from monitoring.report import image_identity, recommend_threshold, write_report
from testkit.capture import CLASSES, images, probabilities, write_capture


def test_reader_returns_every_record_of_every_file_in_time_order(tmp_path):
    written = write_capture(tmp_path, images(60, 1), probabilities(60, 1))
    capture = read_capture(tmp_path)
    assert capture.files == 3 and len(capture.records) == 60 and capture.malformed == []
    assert [r.event_id for r in capture.records] == [r["eventMetadata"]["eventId"] for r in written]
    assert capture.records[0].input_type == "image/png"
    assert Image.open(io.BytesIO(capture.records[0].input)).size == (32, 32)


def test_the_reader_reports_each_file_it_has_read(tmp_path):
    write_capture(tmp_path, images(60, 1), probabilities(60, 1))
    heard: list[tuple[int, int | None, str]] = []
    capture = read_capture(tmp_path, progress=lambda done, total, note="": heard.append((done, total, note)))
    assert heard == [(1, None, "files"), (2, None, "files"), (3, None, "files")] and capture.files == 3


def test_a_malformed_line_is_counted_not_fatal(tmp_path):
    write_capture(tmp_path, images(10, 2), probabilities(10, 2))
    broken = next(tmp_path.rglob("*.jsonl"))
    broken.write_text(broken.read_text() + '{"captureData": {"truncated\n' + '{"not": "a capture"}\n')
    capture = read_capture(tmp_path)
    assert len(capture.records) == 10
    assert len(capture.malformed) == 2
    assert capture.malformed == [f"{broken}:11: the line is not JSON (Unterminated string starting at, column 18)",
                                 f"{broken}:12: captureData is missing or not an object"]


def test_reader_reads_an_s3_prefix(tmp_path):
    write_capture(tmp_path, images(30, 3), probabilities(30, 3))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        for path in tmp_path.rglob("*.jsonl"):
            s3.put_object(Bucket="data", Key=f"data_capture/{path.relative_to(tmp_path)}", Body=path.read_bytes())
        capture = read_capture("s3://data/data_capture/scones-image-classifier", s3=s3)
    assert len(capture.records) == 30 and capture.files == 2


def non_blank(path: Path) -> bool:
    pixels = np.asarray(Image.open(path).convert("RGB"))
    return len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20 and pixels.std() > 10


def test_report_draws_every_plot_and_embeds_them_in_one_page(tmp_path):
    pixels, probs = images(80, 4), probabilities(80, 4)
    write_capture(tmp_path / "capture", pixels, probs)
    labels = {image_identity(image): CLASSES[int(np.argmax(p))] if i % 5 else CLASSES[int(np.argmin(p))]
              for i, (image, p) in enumerate(zip(pixels, probs, strict=True))}

    page = write_report(tmp_path / "capture", tmp_path / "report", class_names=CLASSES, labels=labels)

    plots = sorted((tmp_path / "report").glob("*.png"))
    assert [p.name for p in plots] == ["below_threshold.png", "calibration.png", "class_mix.png",
                                       "confidence_by_class.png", "confidence_over_time.png", "least_confident.png"]
    assert all(non_blank(p) for p in plots)
    text = page.read_text()
    assert text.count("data:image/png;base64,") == len(plots)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["inferences"] == 80 and summary["labelled"] == 80 and summary["variants"] == ["AllTraffic"]
    assert summary["accuracy"] == 0.8  # every fifth label was flipped
    threshold = settings.confidence_threshold()  # write_report's default: the template's ConfidenceThreshold
    assert summary["threshold"] == threshold
    assert summary["below_threshold"] == pytest.approx(float((probs.max(1) < threshold).mean()), abs=1e-4)


def test_report_on_an_empty_capture_writes_a_no_data_page_only_when_asked(tmp_path):
    (tmp_path / "capture").mkdir()
    page = write_report(tmp_path / "capture", tmp_path / "report", allow_empty=True)
    assert "data-verdict='no data'" in page.read_text() and list((tmp_path / "report").glob("*.png")) == []


def test_recommended_threshold_is_the_widest_that_meets_the_precision():
    confidence = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.90, 0.80])
    correct = np.array([True, True, True, True, False, True, False])
    assert recommend_threshold(confidence, correct, 0.99) == {"threshold": 0.96, "coverage": 0.5714,
                                                              "precision": 1.0}
    assert recommend_threshold(confidence, correct, 0.8) == {"threshold": 0.9, "coverage": 0.8571,
                                                             "precision": 0.8333}


@pytest.fixture(scope="module")
def baseline_document():
    return build_baseline(images(400, 10), probabilities(200, 10), CLASSES)


@pytest.fixture(scope="module")
def baseline(baseline_document):
    return Baseline.from_dict(baseline_document)


def drift_over(baseline, tmp_path: Path, pixels: np.ndarray, probs: np.ndarray):
    write_capture(tmp_path, pixels, probs, per_file=100)
    return drift_of(read_capture(tmp_path, class_names=CLASSES), baseline, DriftConfig.load())


def test_traffic_like_the_baseline_does_not_drift(baseline, tmp_path):
    result = drift_over(baseline, tmp_path, images(300, 11), probabilities(300, 11))
    assert [c.feature for c in result.checks] == ["confidence", "brightness", "red", "green", "blue", "class_mix"]
    assert result.drifted == [] and result.verdict == "no drift" and result.samples == 300


def test_brighter_images_are_flagged(baseline, tmp_path):
    result = drift_over(baseline, tmp_path, images(300, 12, brightness=0.75), probabilities(300, 12))
    assert {"brightness", "red", "green", "blue"} <= set(result.drifted) and "class_mix" not in result.drifted


def test_a_shifted_class_mix_is_flagged(baseline, tmp_path):
    result = drift_over(baseline, tmp_path, images(300, 13), probabilities(300, 13, motorcycle_share=0.85))
    assert result.drifted == ["class_mix"]
    (mix,) = [c for c in result.checks if c.feature == "class_mix"]
    assert mix.test == "chi-square" and mix.window.startswith("bicycle 1")


def test_lower_confidence_is_flagged(baseline, tmp_path):
    probs = probabilities(300, 14)
    uniform = 1 / probs.shape[1]
    softened = uniform + (probs - uniform) * 0.6  # each answer 40% of the way to "any class": still summing to 1
    assert drift_over(baseline, tmp_path, images(300, 14), softened).drifted == ["confidence"]


def test_too_few_records_give_no_verdict(baseline, tmp_path):
    with pytest.raises(InsufficientDataError, match="^10 valid inferences in the window, fewer than the 50"):
        drift_over(baseline, tmp_path, images(10, 15), probabilities(10, 15))


def test_psi_is_zero_for_identical_samples_and_grows_with_shift():
    rng = np.random.default_rng(0)
    sample = rng.normal(0, 1, 2000)
    assert psi(sample, sample, 10) == pytest.approx(0, abs=1e-9)
    assert psi(sample, sample + 0.2, 10) < psi(sample, sample + 1.0, 10)


def test_image_features_measure_brightness():
    white, black = np.full((1, 32, 32, 3), 255, np.uint8), np.zeros((1, 32, 32, 3), np.uint8)
    assert image_features(white)["brightness"] == [1.0] and image_features(black)["brightness"] == [0.0]


def test_drift_command_exits_1_and_names_the_drifted_feature(baseline_document, tmp_path):
    from click.testing import CliRunner

    from common.artefacts import write_baseline
    from monitoring.cli import cli

    write_capture(tmp_path / "bright", images(300, 16, brightness=0.75), probabilities(300, 16))
    write_capture(tmp_path / "same", images(300, 17), probabilities(300, 17))
    path = write_baseline(tmp_path, baseline_document)
    runner = CliRunner()
    drifted = runner.invoke(cli, ["drift", "--capture", str(tmp_path / "bright"), "--baseline", str(path)])
    steady = runner.invoke(cli, ["drift", "--capture", str(tmp_path / "same"), "--baseline", str(path)])
    assert drifted.exit_code == 1
    assert drifted.stderr.strip() == ("drift detected: brightness, red, green, blue (PSI >= 0.2 and p < 0.01; against "
                                      "a baseline that names no model)")
    assert steady.exit_code == 0 and steady.stderr.strip() == ("no drift over 300 inferences (against a baseline that "
                                                               "names no model)")
    as_json = runner.invoke(cli, ["drift", "--capture", str(tmp_path / "bright"), "--baseline", str(path), "--json"])
    result = json.loads(as_json.stdout)
    assert as_json.exit_code == 1 and result["verdict"] == "drift" and result["samples"] == 300
    assert result["drifted"] == ["brightness", "red", "green", "blue"] and result["malformed"] == []
    assert [c["feature"] for c in result["checks"]] == ["confidence", "brightness", "red", "green", "blue", "class_mix"]
