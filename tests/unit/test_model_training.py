from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from common import settings
from data_prep.serving.predictor import Predictor
from data_prep.training.data import TrainingDataError, load_training_data
from data_prep.training.local import train_local
from data_prep.training.train import TrainConfig, evaluate, fit_temperature
from testkit.images import labelled_folder


def test_training_writes_a_loadable_model_with_its_metadata(tiny_model):
    metadata = json.loads((tiny_model / "metadata.json").read_text())
    assert metadata["class_names"] == settings.class_names()  # the tiny model is trained on the template's classes
    assert metadata["input"] == {"name": "image", "dtype": "uint8", "shape": ["N", 32, 32, 3], "layout": "NHWC RGB"}
    assert len(metadata["normalisation"]["mean"]) == 3
    assert metadata["training"]["members"] == 2 and metadata["training"]["seed"] == 0
    assert {"accuracy", "coverage", "precision_at_threshold", "training_seconds"} <= set(metadata["metrics"])
    session = ort.InferenceSession(str(tiny_model / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities = session.run(None, {"image": np.zeros((3, 32, 32, 3), np.uint8)})[0]
    assert probabilities.shape == (3, len(settings.class_names()))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)


def test_validation_report_matches_the_metrics(tiny_model):
    report = json.loads((tiny_model / "validation_report.json").read_text())
    assert report["onnx_max_abs_difference"] < 1e-4
    predictions = report["predictions"]
    assert len(predictions) == report["summary"]["count"] > 0
    correct = [p["label"] == settings.class_names()[int(np.argmax(p["probabilities"]))] for p in predictions]
    assert report["summary"]["accuracy"] == pytest.approx(sum(correct) / len(correct), abs=1e-4)
    assert sum(map(sum, report["confusion"])) == len(predictions)


def test_separable_classes_are_learned(tiny_model, tmp_path):
    predictor = Predictor(tiny_model)
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 230
    Image.fromarray(red).save(tmp_path / "red.png")
    assert np.argmax(predictor.predict((tmp_path / "red.png").read_bytes(), "image/png")) == 0


def test_training_is_reproducible_with_a_seed(tmp_path):
    data = labelled_folder(tmp_path / "images", per_class=6)
    config = TrainConfig(members=2, epochs=1, batch_size=4, threads=1)  # folds, temperature and distillation
    first = train_local(data, tmp_path / "a", config)
    second = train_local(data, tmp_path / "b", config)
    first.pop("training_seconds"), second.pop("training_seconds")
    assert first == second
    a = json.loads((tmp_path / "a/validation_report.json").read_text())["predictions"]
    b = json.loads((tmp_path / "b/validation_report.json").read_text())["predictions"]
    assert a == b


def test_dataset_layout_keeps_its_split(tmp_path):
    from data_prep.dataset import transform

    examples = transform.folder_examples(labelled_folder(tmp_path / "images", per_class=8), None, 0.25)
    transform.write_dataset(examples, ["bicycle", "motorcycle"], tmp_path / "ds", source="t")
    train, validation, names = load_training_data(tmp_path / "ds", validation_fraction=0.5)
    assert names == ["bicycle", "motorcycle"]
    assert len(train) == sum(e.split == "train" for e in examples)
    assert len(validation) == sum(e.split == "test" for e in examples)
    assert train.images.shape[1:] == (32, 32, 3) and train.images.dtype == np.uint8


def test_too_little_data_is_a_named_error(tmp_path):
    with pytest.raises(TrainingDataError, match="must hold one sub-folder per label"):
        load_training_data(tmp_path, 0.2)


def test_temperature_undoes_overconfidence():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    true_logit = rng.normal(0, 1.5, 2000)
    logits = np.stack([np.zeros(2000), true_logit], 1)
    labels = (rng.random(2000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    assert fit_temperature(logits * 3, labels) == pytest.approx(3, rel=0.15)


def test_evaluate_counts_coverage_and_precision_at_the_threshold():
    probabilities = np.array([[0.99, 0.01], [0.95, 0.05], [0.6, 0.4], [0.2, 0.8]])
    metrics = evaluate(probabilities, np.array([0, 1, 0, 1]), 0.93)
    assert metrics["accuracy"] == 0.75
    assert metrics["coverage"] == 0.5
    assert metrics["precision_at_threshold"] == 0.5



QUICK = TrainConfig(members=2, epochs=1, batch_size=4, threads=1)


def test_training_over_a_model_keeps_it_beside_as_previous_and_says_so(tmp_path):
    data = labelled_folder(tmp_path / "images", per_class=6)
    model, previous = tmp_path / "model", tmp_path / "model.previous"
    notes: list[str] = []
    train_local(data, model, QUICK, log=notes.append)
    assert notes == [] and not previous.exists()  # nothing was there: nothing to keep, nothing said
    first = {path.name: path.read_bytes() for path in model.iterdir()}
    (model / "train.log").write_text("this run's log\n")  # the CLI's log of the training under way

    train_local(data, model, replace(QUICK, seed=1), log=notes.append)

    assert notes == [f"the model {model} held is kept in {previous} (a new one trained over it)"]
    assert {path.name: path.read_bytes() for path in previous.iterdir()} == first  # whole, byte for byte
    assert json.loads((model / "metadata.json").read_text())["training"]["seed"] == 1
    assert (model / "train.log").read_text() == "this run's log\n"  # the log goes with the model it made
    assert sorted(path.name for path in tmp_path.iterdir()) == ["images", "model", "model.previous"]  # no staging

    second = {path.name: path.read_bytes() for path in model.iterdir() if path.name != "train.log"}
    train_local(data, model, replace(QUICK, seed=2), log=notes.append)  # one previous is kept: the first goes, said
    assert notes[-1] == (f"the model {model} held is kept in {previous}, replacing the older model kept there (only "
                         "the last one is kept) (a new one trained over it)")
    assert {path.name: path.read_bytes() for path in previous.iterdir()} == second


def test_a_training_that_fails_leaves_the_model_folder_as_it_was(tmp_path, monkeypatch):
    import data_prep.training.local as local

    data = labelled_folder(tmp_path / "images", per_class=6)
    model = tmp_path / "model"
    train_local(data, model, QUICK)
    before = {path.name: path.read_bytes() for path in model.iterdir()}
    monkeypatch.setattr(local, "check_export", lambda *_: 1.0)  # the export no longer matches torch
    with pytest.raises(local.ExportMismatchError):
        train_local(data, model, replace(QUICK, seed=1))
    assert {path.name: path.read_bytes() for path in model.iterdir()} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["images", "model"]


def test_a_folder_given_to_training_that_is_not_a_model_is_kept_too(tmp_path):
    data = labelled_folder(tmp_path / "images", per_class=6)
    model = tmp_path / "mine"
    model.mkdir()
    (model / "notes.txt").write_text("a user's file")
    notes: list[str] = []
    train_local(data, model, QUICK, log=notes.append)
    assert (tmp_path / "mine.previous" / "notes.txt").read_text() == "a user's file"
    assert (model / "model.onnx").is_file() and len(notes) == 1
