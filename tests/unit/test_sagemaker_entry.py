"""The SageMaker entry point's own contract: the weights channel reaches the trainer, and a bad input is one line
on stderr with the error contract's status (the job's log and FailureReason), not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from data_prep.training import sagemaker_entry


def test_the_weights_channel_is_the_trainers_weights_file(tmp_path, monkeypatch):
    seen = {}

    def fake_train_local(data_dir, model_dir, config, **options):
        seen.update(options, data_dir=data_dir, preset=config.preset)
        return {"accuracy": 1.0}

    monkeypatch.setattr("data_prep.training.local.train_local", fake_train_local)
    source = tmp_path / "source"  # the job's source directory: the program beside inference_code/
    (source / sagemaker_entry.INFERENCE_CODE_DIR).mkdir(parents=True)
    (source / sagemaker_entry.INFERENCE_CODE_DIR / "inference.py").write_text("# hooks\n")
    monkeypatch.setattr(sagemaker_entry, "__file__", str(source / "sagemaker_train.py"))
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "resnet18-f37072fd.pth").write_bytes(b"w")
    environ = {"SM_MODEL_DIR": str(tmp_path / "model"), "SM_CHANNEL_TRAIN": str(tmp_path / "train"),
               "SM_CHANNEL_WEIGHTS": str(tmp_path / "weights")}
    sagemaker_entry.run(["--threshold", "0.9", "--preset", "transfer"], environ)
    assert seen["weights"] == tmp_path / "weights" / "resnet18-f37072fd.pth"
    assert (seen["preset"], seen["data_dir"]) == ("transfer", tmp_path / "train")
    assert (tmp_path / "model" / "code" / "inference.py").read_text() == "# hooks\n"
    seen.clear()
    sagemaker_entry.run(["--threshold", "0.9"], {**environ, "SM_CHANNEL_WEIGHTS": ""})
    assert seen["weights"] is None


def entry_point(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The entry point as sagemaker-training runs it: a process of its own, the SM_* variables, hyperparameters."""
    return subprocess.run([sys.executable, "-m", "data_prep.training.sagemaker_entry", "--threshold", "0.9"],
                          env={"SM_MODEL_DIR": str(tmp_path / "model"), "SM_CHANNEL_TRAIN": str(tmp_path / "train"),
                               "PATH": "/usr/bin:/bin"},
                          cwd=Path.cwd(), capture_output=True, text=True, timeout=300, check=False)


def test_a_bad_dataset_is_one_line_on_stderr_with_the_input_status(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "dataset.json").write_text("{oops")
    result = entry_point(tmp_path)
    assert (result.returncode, result.stderr) == (2, (
        f"ArtefactError: {tmp_path / 'train' / 'dataset.json'} is not valid JSON (Expecting property name enclosed "
        "in double quotes: line 1 column 2 (char 1)): build the dataset with `.venv/bin/python -m data_prep "
        "transform`\n"))


def test_a_channel_without_class_folders_is_one_line_too(tmp_path):
    (tmp_path / "train").mkdir()
    result = entry_point(tmp_path)
    assert (result.returncode, result.stderr) == (2, (
        f"TrainingDataError: {tmp_path / 'train'}: {tmp_path / 'train'} must hold one sub-folder per label (at "
        "least two, each with images), found none\n"))


def test_train_sagemaker_takes_weights_only_with_the_transfer_preset(tmp_path):
    from click.testing import CliRunner

    from data_prep.cli import cli

    weights = tmp_path / "resnet18-f37072fd.pth"
    weights.write_bytes(b"w")
    result = CliRunner().invoke(cli, ["train", "sagemaker", "--weights", str(weights)])
    assert result.exit_code == 2 and "Error: --weights goes with --preset transfer" in result.output
