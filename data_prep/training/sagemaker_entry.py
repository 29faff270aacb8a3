"""The SageMaker training job's entry point: `train local`'s own code, run inside the PyTorch training container.

SageMaker's PyTorch training container runs this file (copied to the source directory's root as the
script-mode program when the job is created) through sagemaker-training, which hands it:
- the hyperparameters as `--name value` arguments (the job's HyperParameters, without the `sagemaker_*`
  ones): the TrainConfig fields (config.as_hyperparameters), `threshold`, `classes`, `validation_fraction`
  and `scones_trainer`, the mark `data_prep` checks before it reads a job's artefact;
- the channels as folders, `SM_CHANNEL_<NAME>`: `train` is the staged dataset (dataset.json, train.lst,
  test.lst, train/, test/), `labels` (optional) the reviewed labels' Ground Truth manifests, whose images
  are read from S3 with the job's role;
- `SM_MODEL_DIR` (/opt/ml/model), which SageMaker packs into the job's `model.tar.gz`.

It calls `train_local` (the same data loading, seeds, folds, calibration, distillation, export, baseline and
validation report as `data_prep train local`) with SM_MODEL_DIR as the model folder, then copies the
inference code shipped in the source directory (`inference_code/`, built by data_prep.packaging from the
same modules `data_prep package` ships) to `SM_MODEL_DIR/code`: the job's artefact is then exactly the
archive `data_prep package` writes for the same model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.training.config import INFERENCE_CODE_DIR, TrainConfig, from_hyperparameters

CODE_DIR = "code"
MARK = "scones_trainer"  # common.model_archive.TRAINER_HYPERPARAMETER


def parser() -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in TrainConfig.__dataclass_fields__:
        arguments.add_argument(f"--{field}", dest=f"config_{field}")
    arguments.add_argument("--threshold", type=float, required=True)
    arguments.add_argument("--classes", default="")
    arguments.add_argument("--validation_fraction", type=float, default=0.2)
    arguments.add_argument(f"--{MARK}", default="")
    return arguments


def run(argv: Sequence[str], environ: dict[str, str], *, s3: Any = None) -> dict[str, Any]:
    """Train into SM_MODEL_DIR and add the inference code; returns train_local's metrics."""
    from data_prep.training.local import train_local

    options = parser().parse_args(list(argv))
    config = from_hyperparameters({name[len("config_"):]: value for name, value in vars(options).items()
                                   if name.startswith("config_") and value is not None})
    model_dir = Path(environ["SM_MODEL_DIR"])
    data_dir = Path(environ["SM_CHANNEL_TRAIN"])
    labels = environ.get("SM_CHANNEL_LABELS")
    if labels and s3 is None:
        import boto3

        s3 = boto3.client("s3")  # the job's role and region: reviewed images are read from where they were staged
    classes = [name for name in options.classes.split(",") if name] or None
    # the transfer preset's weights: a `weights` channel's file when the job has one, else torch.hub downloads them
    weights_dir = environ.get("SM_CHANNEL_WEIGHTS")
    weights = next(iter(sorted(Path(weights_dir).glob("*.pth"))), None) if weights_dir else None
    metrics = train_local(data_dir, model_dir, config, threshold=options.threshold,
                          validation_fraction=options.validation_fraction, classes=classes, labels=labels, s3=s3,
                          log=lambda message: print(message, file=sys.stderr, flush=True),
                          progress=_print_progress, weights=weights)
    shipped = Path(__file__).resolve().parent / INFERENCE_CODE_DIR
    target = model_dir / CODE_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(shipped, target)
    return metrics


def _print_progress(done: int, total: int | None, note: str = "") -> None:
    """One line per epoch in the job's log (CloudWatch), where a progress bar would be noise."""
    print(f"training: {done}/{total} epochs ({note})", flush=True)


def main() -> None:
    """Run the job; a named error (bad data, a bad weights file) is one line on stderr, as from `train local`, and
    the error contract's status: sagemaker-training reports it as the job's FailureReason."""
    from common.errors import NamedError

    try:
        metrics = run(sys.argv[1:], dict(os.environ))
    except NamedError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
        raise SystemExit(int(error.exit_status)) from None
    print(f"model written to {os.environ['SM_MODEL_DIR']}: {metrics}", flush=True)


if __name__ == "__main__":
    main()
