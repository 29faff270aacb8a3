"""The gate: one metrics function, the paired bootstrap of each difference, and `python -m data_prep evaluate`'s
verdicts (0 promote, 1 hold, 2 cannot run)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from common import settings
from common.artefacts import read_model_metadata, write_model_metadata
from data_prep.cli import main
from data_prep.training.evaluate import GateConfig, compare, evaluate
from testkit.images import labelled_folder

CONFIG = GateConfig(threshold=0.9, resamples=1000, seed=3)


def probabilities_for(labels: np.ndarray, *, right: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Two-class probabilities whose top class is the label where `right`, with top probability `confidence`."""
    top = np.where(right, labels, 1 - labels)
    output = np.empty((len(labels), 2))
    output[np.arange(len(labels)), top] = confidence
    output[np.arange(len(labels)), 1 - top] = 1 - confidence
    return output


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, 400)


def test_evaluate_reports_what_it_always_did():
    probabilities = np.array([[0.95, 0.05], [0.4, 0.6], [0.2, 0.8], [0.97, 0.03]])
    assert evaluate(probabilities, np.array([0, 0, 1, 1]), 0.93) == {
        "count": 4, "accuracy": 0.5, "threshold": 0.93, "coverage": 0.5, "precision_at_threshold": 0.5,
        "log_loss": round(float(-np.log([0.95, 0.4, 0.8, 0.03]).mean()), 4)}
    assert evaluate(np.array([[0.6, 0.4]]), np.array([0]), 0.93)["precision_at_threshold"] == 0.0
    assert evaluate(np.zeros((0, 2)), np.zeros(0, int), 0.93) == {"count": 0}


def test_the_same_model_is_promoted_with_an_interval_of_zero(labels):
    rng = np.random.default_rng(1)
    model = probabilities_for(labels, right=rng.random(400) < 0.9, confidence=rng.uniform(0.6, 1.0, 400))
    comparison = compare(model, model, labels, CONFIG)
    assert comparison.promote and comparison.worse_on == []
    accuracy = comparison.rows[0]
    assert (accuracy["difference"], accuracy["ci_low"], accuracy["ci_high"]) == (0.0, 0.0, 0.0)


def test_a_model_that_is_clearly_worse_is_held_on_accuracy_and_precision(labels):
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0.6, 1.0, 400)
    old_right = rng.random(400) < 0.9
    new_right = old_right & (rng.random(400) < 0.85)  # loses 15% of what the old model got right
    comparison = compare(probabilities_for(labels, right=new_right, confidence=confidence),
                         probabilities_for(labels, right=old_right, confidence=confidence), labels, CONFIG)
    rows = {row["metric"]: row for row in comparison.rows}
    assert comparison.worse_on == ["accuracy", "precision_at_threshold"] and not comparison.promote
    accuracy = rows["accuracy"]
    assert accuracy["difference"] == round(new_right.mean() - old_right.mean(), 4)
    assert accuracy["ci_low"] < accuracy["difference"] < accuracy["ci_high"] < 0
    assert rows["coverage"]["difference"] == 0.0 and not rows["coverage"]["gated"]
    assert rows["log_loss"]["difference"] > 0 and rows["log_loss"]["better_is"] == "lower"
    table = comparison.as_dict()
    assert table["verdict"] == "hold" and table["bootstrap"]["resamples"] == 1000 and table["images"] == 400
    assert table["new"] == evaluate(probabilities_for(labels, right=new_right, confidence=confidence), labels, 0.9)


def test_a_small_loss_that_the_interval_cannot_show_is_still_held_past_the_margin(labels):
    confidence = np.random.default_rng(4).uniform(0.95, 1.0, 400)  # everything passes: precision follows accuracy
    old_right, new_right = np.ones(400, bool), np.ones(400, bool)
    old_right[:40] = new_right[:40] = False
    new_right[40:50] = False  # NEW misses 10 that OLD gets right ...
    old_right[50:54] = False  # ... and gets 4 that OLD misses: -6 of 400, -1.5 points, not significant
    new, old = (probabilities_for(labels, right=right, confidence=confidence) for right in (new_right, old_right))
    comparison = compare(new, old, labels, CONFIG)
    accuracy = comparison.rows[0]
    assert accuracy["difference"] == -0.015 and accuracy["ci_low"] < -0.015 < 0 < accuracy["ci_high"]
    assert comparison.worse_on == ["accuracy", "precision_at_threshold"]  # below the 1-point margin
    assert compare(new, old, labels, GateConfig(threshold=0.9, resamples=1000, seed=3, margin=0.02)).promote


def test_the_bootstrap_is_seeded(labels):
    rng = np.random.default_rng(5)
    new, old = (probabilities_for(labels, right=rng.random(400) < 0.85, confidence=rng.uniform(0.5, 1, 400))
                for _ in range(2))
    assert compare(new, old, labels, CONFIG).as_dict() == compare(new, old, labels, CONFIG).as_dict()
    other = compare(new, old, labels, GateConfig(threshold=0.9, resamples=1000, seed=4)).rows[0]
    assert other["difference"] == compare(new, old, labels, CONFIG).rows[0]["difference"]
    assert other["ci_low"] != compare(new, old, labels, CONFIG).rows[0]["ci_low"]


def test_a_new_model_that_passes_nothing_is_held_unless_the_old_one_passed_nothing_either(labels):
    unsure = probabilities_for(labels, right=np.ones(400, bool), confidence=np.full(400, 0.6))
    sure = probabilities_for(labels, right=np.ones(400, bool), confidence=np.full(400, 0.99))
    held = compare(unsure, sure, labels, CONFIG)
    assert held.worse_on == ["precision_at_threshold"]
    assert {row["metric"]: row["new"] for row in held.rows}["precision_at_threshold"] is None
    assert compare(sure, unsure, labels, CONFIG).promote
    assert compare(unsure, unsure, labels, CONFIG).promote  # neither passes anything: nothing to be worse than


@pytest.fixture
def images(tmp_path):
    return labelled_folder(tmp_path / "eval", per_class=8, classes=settings.class_names())  # tiny_model's classes


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["python -m data_prep", "evaluate", "--resamples", "200", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return int(exited.value.code), captured.out, captured.err


def test_the_command_promotes_the_same_model_and_writes_the_table(tiny_model, images, tmp_path, monkeypatch, capsys):
    status, output, _ = run(monkeypatch, capsys, "--model-dir", str(tiny_model), "--baseline-model-dir",
                            str(tiny_model), "--data-dir", str(images), "--out", str(tmp_path / "gate.json"))
    assert status == 0
    table = json.loads((tmp_path / "gate.json").read_text())
    assert table["verdict"] == "promote" and table["images"] == 8 * len(settings.class_names())
    assert table["threshold"] == settings.confidence_threshold()  # the default: the template's ConfidenceThreshold
    assert [row["metric"] for row in table["metrics"]] == ["accuracy", "coverage", "precision_at_threshold",
                                                           "log_loss"]
    assert "PROMOTE: NEW is not worse on accuracy nor on precision_at_threshold" in " ".join(output.split())


def test_the_command_holds_a_worse_model(tiny_model, images, tmp_path, monkeypatch, capsys):
    flipped = tmp_path / "flipped"
    shutil.copytree(tiny_model, flipped)
    metadata = read_model_metadata(flipped)
    write_model_metadata(flipped, {**metadata, "class_names": metadata["class_names"][::-1]})  # every answer swapped
    status, output, _ = run(monkeypatch, capsys, "--model-dir", str(flipped), "--baseline-model-dir",
                            str(tiny_model), "--data-dir", str(images), "--out", str(tmp_path / "gate.json"))
    assert status == 1
    assert json.loads((tmp_path / "gate.json").read_text())["worse_on"][0] == "accuracy"
    assert "HOLD: NEW is worse on accuracy" in " ".join(output.split())


def test_the_command_cannot_compare_models_with_different_classes(tiny_model, images, tmp_path, monkeypatch,
                                                                  capsys):
    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    write_model_metadata(other, {**read_model_metadata(other), "class_names": ["cat", "dog"]})
    status, _, error = run(monkeypatch, capsys, "--model-dir", str(other), "--baseline-model-dir", str(tiny_model),
                           "--data-dir", str(images))
    assert status == 2
    assert error.strip().splitlines()[-1].startswith("GateCannotRunError: the models' class sets differ: ")


def test_the_command_cannot_run_on_an_empty_split(tiny_model, tmp_path, monkeypatch, capsys):
    dataset = tmp_path / "dataset"
    (dataset / "test").mkdir(parents=True)
    (dataset / "test.lst").write_text("")
    (dataset / "dataset.json").write_text(json.dumps({"class_names": ["bicycle", "motorcycle"]}))
    status, _, error = run(monkeypatch, capsys, "--model-dir", str(tiny_model), "--baseline-model-dir",
                           str(tiny_model), "--data-dir", str(dataset))
    assert status == 2
    assert error.strip().splitlines()[-1] == (f"GateCannotRunError: {dataset} holds no 'test' images to compare "
                                              "the models on")


def test_an_archive_whose_code_is_not_ours_is_refused_unless_its_own_hooks_score_it(tiny_model, images, tmp_path,
                                                                                    monkeypatch, capsys):
    """An archive whose code/inference.py answers [0.5, 0.5] was promoted: the gate scored its model.onnx with this
    repository's Predictor, never the code that would serve. Now it is refused by name, or judged on its hooks'
    answers."""
    import tarfile

    from common.model_archive import sha256_file, write_tar_gz
    from data_prep.packaging import package_model

    packaged = package_model(tiny_model, tmp_path / "ours.tar.gz")
    with tarfile.open(packaged.archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    files["code/inference.py"] += b"\n\ndef predict_fn(input_data, model):\n    return [0.5, 0.5]\n"
    edited = tmp_path / "edited.tar.gz"
    write_tar_gz(files.items(), edited)
    gate_file = tmp_path / "gate.json"
    arguments = ["--model", str(edited), "--baseline-model", str(tiny_model), "--data-dir", str(images), "--out",
                 str(gate_file)]
    status, _, error = run(monkeypatch, capsys, *arguments)
    assert (status, error.strip().splitlines()[-1]) == (2, (
        f"ForeignCodeError: {edited}: its code/ is not what this repository's `package` writes (code/inference.py "
        "differ): what it answers was never scored; score it through its own hooks with `.venv/bin/python -m "
        "data_prep evaluate --score-with-hooks`, or package the model again"))
    assert not gate_file.exists()
    status, output, _ = run(monkeypatch, capsys, *arguments, "--score-with-hooks")
    table = json.loads(gate_file.read_text())
    assert status == 1 and table["verdict"] == "hold" and "accuracy" in table["worse_on"]
    assert table["new"]["coverage"] == 0.0  # [0.5, 0.5] never passes the threshold: what the hooks answered
    assert table["new_model"]["archive_sha256"] == sha256_file(edited)
    assert table["new_model"]["scored_by"].startswith("the archive's own code/inference.py hooks")
    assert table["baseline_model"]["archive_sha256"] == packaged.archive_sha256
    assert table["baseline_model"]["code_sha256"] == packaged.code_sha256
    # our own archive, scored through its hooks too (--score-with-hooks changes nothing for it): the same table
    status, _, _ = run(monkeypatch, capsys, "--model", str(packaged.archive), "--baseline-model", str(tiny_model),
                       "--data-dir", str(images), "--out", str(gate_file), "--score-with-hooks")
    assert status == 0 and json.loads(gate_file.read_text())["new_model"]["scored_by"].startswith(
        "data_prep serve's Predictor")
