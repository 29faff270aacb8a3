"""`python -m workflow run --loop-labels FILE` end to end on a small folder: the first pass sends images to review,
the labels of those (outside the held-back part) retrain the model, and the gate judges both models on the held-back
images, which neither trained on."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from common import settings
from common.artefacts import parse_ground_truth_manifest, read_manifest, read_model_metadata
from data_prep.cli import cli as data_prep_cli
from testkit.images import labelled_folder
from workflow.cli import cli
from workflow.loop import held_back


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    images = labelled_folder(root / "images", per_class=20, classes=settings.class_names())
    out = root / "out"
    built = CliRunner().invoke(data_prep_cli, ["transform", "--source", str(images), "--out", str(out / "dataset")])
    assert built.exit_code == 0, built.output
    labels = root / "labels.jsonl"
    written = CliRunner().invoke(data_prep_cli, ["ground-truth", "--dataset", str(out / "dataset"), "--out",
                                                 str(labels)])
    assert written.exit_code == 0, written.output
    result = CliRunner().invoke(cli, ["run", "--source", str(images), "--out", str(out), "--members", "1",
                                      "--epochs", "2", "--loop-labels", str(labels), "--audit-rate", "1"])
    return result, out, labels


def test_the_loop_retrains_on_the_reviewed_images_and_gates_on_the_held_back_ones(loop_run):
    result, out, labels = loop_run
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    loop = summary["loop"]
    tests = sorted(key for key, row in read_manifest(out / "dataset").items() if row.split == "test")
    held = [key for key in tests if held_back(key, 0.5)]
    reviewed = sorted(json.loads(p.read_text())["s3_key"] for p in (out / "bucket" / "review").glob("*.json"))
    trainable = [key for key in reviewed if not held_back(key, 0.5)]
    assert len(reviewed) == summary["review"] == loop["sent_to_review"]
    assert 0 < len(held) < len(tests) and trainable  # the fixture's images fall on both sides

    used = parse_ground_truth_manifest((out / "loop" / "labels.jsonl").read_text())
    assert sorted(label.source_ref for label in used) == [f"s3://scones-offline/{key}" for key in trainable]
    assert loop["reviewed_and_labelled"] == loop["used_for_training"] == len(trainable)
    assert loop["labels_in_file"] == len(tests)
    assert read_model_metadata(out / "loop" / "model")["reviewed_labels"]["used"] == len(trainable)

    holdout = sorted(f"test/{p.name}" for p in (out / "loop" / "holdout").rglob("*.png"))
    assert holdout == held and loop["held_back_images"] == len(held) == loop["gate"]["images"]
    assert not set(holdout) & set(trainable)  # what judges never trained either model

    gate = json.loads((out / "loop" / "gate.json").read_text())
    assert gate == loop["gate"] and loop["decision"] == gate["verdict"] in {"promote", "hold"}
    assert [row["metric"] for row in gate["metrics"]] == ["accuracy", "coverage", "precision_at_threshold",
                                                          "log_loss"]
    flat = " ".join(result.output.split())
    assert f"closed loop: {len(trainable)} reviewed images retrained the model; both judged on {len(held)} " in flat
    assert ("PROMOTE: the new model is not worse" if gate["verdict"] == "promote" else "HOLD: the new model") in flat
    # only a promoted model replaces the served one (the run trained OUT/model, so it is ours to replace)
    served = read_model_metadata(out / "model")
    if gate["verdict"] == "promote":
        assert served == read_model_metadata(out / "loop" / "model") and "reviewed_labels" in served
        assert "reviewed_labels" not in read_model_metadata(out / "model.previous")
        assert (loop["served_model"], loop["promoted_into"], loop["old_model"]) == (
            str(out / "model"), str(out / "model"), str(out / "model.previous"))
        assert f"promoted: {out / 'model'} now holds the new model" in flat
    else:
        assert "reviewed_labels" not in served and not (out / "model.previous").exists()
        assert (loop["served_model"], loop["promoted_into"]) == (str(out / "model"), None)
        assert f"held: {out / 'model'} stays the served model" in flat


def test_a_promoted_model_replaces_the_served_one_whole_and_the_old_one_is_kept(tmp_path):
    from common.artefacts import KeptModel
    from workflow.loop import install_promoted

    served, candidate, previous = tmp_path / "model", tmp_path / "loop" / "model", tmp_path / "model.previous"
    for folder, text in ((served, "old"), (candidate, "new"), (previous, "older")):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_text(text)
        (folder / "metadata.json").write_text(text)
    assert install_promoted(candidate, served) == KeptModel(previous, replaced_older=True)  # the older one: said
    assert {p.name: p.read_text() for p in served.iterdir()} == {"model.onnx": "new", "metadata.json": "new"}
    assert {p.name: p.read_text() for p in previous.iterdir()} == {"model.onnx": "old", "metadata.json": "old"}
    assert (candidate / "model.onnx").read_text() == "new"  # the candidate stays where the gate judged it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop", "model", "model.previous"]  # no staging left


def test_a_promotion_that_drops_an_older_previous_model_says_so(loop_run, capsys):
    from workflow.cli import print_loop

    _, out, _ = loop_run
    loop = json.loads((out / "summary.json").read_text())["loop"]
    assert loop["replaced_older_previous"] is False  # the run's own first training left no older model to drop
    promoted = {**loop, "decision": "promote", "promoted_into": str(out / "model"),
                "old_model": str(out / "model.previous"), "replaced_older_previous": True}
    print_loop(promoted)
    flat = " ".join(capsys.readouterr().out.split())
    assert (f"promoted: {out / 'model'} now holds the new model (the old one: {out / 'model.previous'}; the older "
            "model kept there was replaced)") in flat
    print_loop({**promoted, "replaced_older_previous": False})
    flat = " ".join(capsys.readouterr().out.split())
    assert f"promoted: {out / 'model'} now holds the new model (the old one: {out / 'model.previous'})" in flat


def test_two_sources_of_labels_are_refused():
    result = CliRunner().invoke(cli, ["run", "--loop-demo-labels", "--loop-labels", "."])
    assert result.exit_code == 2 and "give one" in result.output


def test_the_gate_also_judges_both_models_on_the_audits_and_the_held_back_reviews_never_on_what_trained(loop_run):
    result, out, _ = loop_run
    summary = json.loads((out / "summary.json").read_text())
    reviewed = sorted(json.loads(p.read_text())["s3_key"] for p in (out / "bucket" / "review").glob("*.json"))
    held_reviews = [key for key in reviewed if held_back(key, 0.5)]
    sample = summary["loop"]["judged_on_live_traffic"]
    assert sample == {"audits": summary["succeeded"], "audits_labelled": summary["succeeded"],
                      "low_confidence": len(held_reviews), "low_confidence_labelled": len(held_reviews),
                      "low_confidence_excluded": len(reviewed) - len(held_reviews),
                      "weights": {"audit": [1.0] if summary["succeeded"] else [],
                                  "low_confidence": [1.0] if held_reviews else []}, "unreadable": 0}
    gate = summary["loop"]["gate"]
    assert gate["traffic"]["images"] == summary["succeeded"] + len(held_reviews)
    assert [row["metric"] for row in gate["traffic"]["metrics"]] == ["accuracy", "coverage", "precision_at_threshold",
                                                                     "log_loss"]
    assert "and on the live traffic: " in " ".join(result.output.split())
