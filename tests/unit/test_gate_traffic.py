"""The gate on live traffic (issue 21, item 5): labelled decisions weighted by the traffic they stand for, so a
candidate is judged on an unbiased sample (the audits), not only on the hard cases people were asked about."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import imaging.preprocess
from data_prep.training.evaluate import GateConfig, compare, labelled_traffic, per_image, rates
from modelquality.assess import TrafficSample, load, traffic_sample
from modelquality.bucket import FolderBucket
from tests.unit.test_gate import probabilities_for, run
from tests.unit.test_model_quality import CLASSES, Mirror

CONFIG = GateConfig(threshold=0.9, resamples=1000, seed=3)


def test_weighted_rates_are_weighted_means():
    images = per_image(np.array([[0.95, 0.05], [0.6, 0.4], [0.2, 0.8], [0.97, 0.03]]), np.array([0, 0, 1, 1]), 0.93)
    weighted = {name: float(value[0]) for name, value in rates(images, weights=np.array([3.0, 1.0, 1.0, 1.0])).items()}
    assert weighted["accuracy"] == pytest.approx(5 / 6)  # right on 0 (x3), 1, 2; wrong on 3
    assert weighted["coverage"] == pytest.approx(4 / 6)  # 0 (x3) and 3 pass 0.93
    assert weighted["precision_at_threshold"] == pytest.approx(3 / 4)
    assert {name: float(value[0]) for name, value in rates(images, weights=np.ones(4)).items()} == {
        name: float(value[0]) for name, value in rates(images).items()}


def test_the_sample_weighs_audits_by_their_rate_and_labelled_reviews_by_their_share(tmp_path):
    mirror = Mirror(tmp_path / "bucket")
    for image in ("a", "b"):
        mirror.decide(image, "bicycle", audit=True, rate=0.25)
        mirror.label(image, "bicycle")
    mirror.decide("c", "bicycle", audit=True, rate=0.25)  # not labelled yet: not judged
    for image in ("d", "e", "f", "g", "trained"):
        mirror.decide(image, "motorcycle", audit=False)
    for image in ("d", "e", "trained"):
        mirror.label(image, "motorcycle")

    sample = traffic_sample(load(FolderBucket(mirror.root)), CLASSES,
                            excluded=lambda decision: decision.s3_key == "incoming/trained.png")

    assert sorted((j.decision.s3_key, j.weight) for j in sample.judged) == [
        ("incoming/a.png", 4.0), ("incoming/b.png", 4.0), ("incoming/d.png", 2.0), ("incoming/e.png", 2.0)]
    assert sample.counts == {"audits": 3, "audits_labelled": 2, "low_confidence": 4, "low_confidence_labelled": 2,
                             "low_confidence_excluded": 1}
    assert sample.weights == {"audit": [4.0], "low_confidence": [2.0]}


def test_a_candidate_better_on_the_hard_cases_but_wrong_on_confident_traffic_is_held_only_when_audits_count():
    """100 labelled low-confidence items (the new model gets 80 right, the old 50) and 10 audits at 2% (the old model
    got all right, the new 6): on the hard cases alone the new model looks better and is promoted; with the audits,
    weighted as the traffic they stand for (each for 50 confident decisions), it is worse, and held."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 110)
    hard, audits = np.arange(100), np.arange(100, 110)
    old_right, new_right = np.zeros(110, bool), np.zeros(110, bool)
    old_right[hard[:50]], new_right[hard[:80]] = True, True
    old_right[audits], new_right[audits[:6]] = True, True
    confidence = np.where(np.isin(np.arange(110), audits), 0.99, 0.7)
    new = probabilities_for(labels, right=new_right, confidence=confidence)
    old = probabilities_for(labels, right=old_right, confidence=confidence)

    on_the_hard_cases = compare(new[hard], old[hard], labels[hard], CONFIG)
    weighted = compare(new, old, labels, CONFIG, weights=np.where(np.isin(np.arange(110), audits), 50.0, 1.0))

    assert on_the_hard_cases.promote
    assert {row["metric"]: row["new"] for row in weighted.rows}["accuracy"] == pytest.approx(380 / 600, abs=1e-4)
    assert weighted.worse_on == ["accuracy", "precision_at_threshold"]


@pytest.fixture
def labelled_bucket(tmp_path):
    """A bucket with the test folder's images decided: half audited, half sent to review; every one labelled."""
    from testkit.images import labelled_folder

    images = labelled_folder(tmp_path / "images", per_class=6)
    mirror = Mirror(tmp_path / "bucket")
    for index, path in enumerate(sorted(images.rglob("*.png"))):
        name, truth = f"photo-{index}", path.parent.name
        mirror.decide(name, truth, audit=index % 2 == 0, rate=0.5)
        shutil.copyfile(path, mirror.root / "incoming" / f"{name}.png")  # the image itself, to be scored
        mirror.label(name, truth)
    return images, mirror.root


def test_the_command_judges_both_models_on_the_labelled_traffic_too(tiny_model, labelled_bucket, tmp_path,
                                                                      monkeypatch, capsys):
    images, bucket = labelled_bucket
    status, output, _ = run(monkeypatch, capsys, "--model-dir", str(tiny_model), "--baseline-model-dir",
                            str(tiny_model), "--data-dir", str(images), "--audits", str(bucket), "--out",
                            str(tmp_path / "gate.json"))
    assert status == 0
    table = json.loads((tmp_path / "gate.json").read_text())
    assert table["traffic"]["images"] == 12
    assert table["traffic"]["sample"] == {"audits": 6, "audits_labelled": 6, "low_confidence": 6,
                                          "low_confidence_labelled": 6, "low_confidence_excluded": 0,
                                          "weights": {"audit": [2.0], "low_confidence": [1.0]}, "unreadable": 0}
    assert [row["worse"] for row in table["traffic"]["metrics"]] == [False] * 4
    flat = " ".join(output.split())
    assert ("live traffic: 6 labelled audits (each for 2 confident decisions) and 6 labelled low-confidence items "
            "(each for 1)") in flat


def test_a_model_worse_on_the_labelled_traffic_is_held_for_it(tiny_model, labelled_bucket, tmp_path, monkeypatch,
                                                              capsys):
    from testkit.models import confidently_wrong

    images, bucket = labelled_bucket
    wrong = confidently_wrong(tiny_model, tmp_path / "wrong", wrong_on="motorcycle", read_as="bicycle")
    status, output, _ = run(monkeypatch, capsys, "--model-dir", str(wrong), "--baseline-model-dir",
                            str(tiny_model), "--data-dir", str(images), "--audits", str(bucket), "--out",
                            str(tmp_path / "gate.json"))
    assert status == 1
    worse = json.loads((tmp_path / "gate.json").read_text())["worse_on"]
    assert "accuracy on live traffic" in worse and "precision_at_threshold on live traffic" in worse


def test_an_audits_source_that_is_not_a_bucket_is_one_line(tiny_model, tmp_path, monkeypatch, capsys):
    status, _, error = run(monkeypatch, capsys, "--model-dir", str(tiny_model), "--baseline-model-dir",
                           str(tiny_model), "--data-dir", str(tmp_path), "--audits", str(tmp_path / "nowhere"))
    assert status == 2
    assert error.strip().splitlines() == [f"QualitySourceError: {tmp_path / 'nowhere'} is not a folder: give "
                                          "s3://bucket or a folder that mirrors one (the OUT/bucket a "
                                          "`.venv/bin/python -m workflow run --out OUT` leaves)"]


def test_an_empty_traffic_sample_has_the_one_image_size(monkeypatch):
    """The image size has one home (imaging.preprocess.MODEL_SIDE): an empty sample is shaped by it, not by a copy."""
    monkeypatch.setattr(imaging.preprocess, "MODEL_SIDE", 48)
    traffic = labelled_traffic(TrafficSample(judged=[], counts={}, weights={}, problems=[]), CLASSES,
                               read=lambda key: b"")
    assert traffic.images.shape == (0, 48, 48, 3) and traffic.images.dtype == np.uint8
    assert traffic.sample == {"weights": {}, "unreadable": 0}
