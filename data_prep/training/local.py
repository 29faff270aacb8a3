"""`train local`: data -> calibrated ensemble -> ONNX + metadata + validation report in one folder."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common import settings
from common.artefacts import (
    holds_more_than,
    install_model,
    read_model_metadata,
    staging_model_dir,
    write_json,
    write_model_metadata,
)
from common.model_archive import REPORT_FILE, bind_baseline
from common.progress import Progress
from data_prep.errors import DataPrepError
from data_prep.training.data import ImageSet, load_training_data
from data_prep.training.export import check_export, write_model
from data_prep.training.reviewed import ImageReader, content_hash, hashes_of, read_manifests, select_reviewed
from data_prep.training.train import TrainConfig, TrainedEnsemble, evaluate, fit_ensemble
from monitoring.baseline import build_baseline
from monitoring.calibration import reliability_bins

EXPORT_TOLERANCE = 1e-4
TRAIN_LOG = "train.log"  # what libraries print while `train local` runs, beside the model it made (the CLI's)


class ExportMismatchError(DataPrepError):
    """The ONNX model does not reproduce the torch ensemble's probabilities."""


def train_local(data_dir: Path, model_dir: Path, config: TrainConfig, *, threshold: float | None = None,
                validation_fraction: float = 0.2, progress: Progress | None = None,
                classes: Sequence[str] | None = None, log: Callable[[str], None] | None = None,
                labels: str | Path | None = None, bucket_dir: Path | None = None, s3: Any | None = None,
                weights: Path | None = None) -> dict[str, Any]:
    """Train, calibrate, export and report; `threshold` defaults to the template's ConfidenceThreshold.

    `classes` picks and orders the classes (as `transform --classes`); `log` receives warnings about
    sub-folders of `data_dir` that are not taken as classes (hidden or empty ones), and about label
    lines not used. `labels` (Ground Truth manifests: a file, a folder or s3://...) adds the reviewed
    images to the training set, de-duplicated against it (see data_prep.training.reviewed); they leave
    the validation set if it holds them, so its metrics stay honest. `metadata.json` records what was used.
    `weights` (the transfer preset): a torchvision resnet18 state_dict file; without it they are downloaded.
    """
    threshold = settings.confidence_threshold() if threshold is None else threshold
    pretrained: dict[str, Any] | None = None
    extra: dict[str, Any] = {}
    if config.preset == "transfer":  # read (or download) the weights first: a failure costs no training time
        from data_prep.training.backbone import read_weights

        pretrained, extra["pretrained"] = read_weights(weights)
    started = time.perf_counter()
    train, validation, class_names = load_training_data(data_dir, validation_fraction, classes=classes, log=log)
    if labels is not None:
        train, validation, extra["reviewed_labels"] = add_reviewed(train, validation, class_names, labels,
                                                                   bucket_dir=bucket_dir, s3=s3, log=log)
    ensemble = fit_ensemble(train, class_names, config, progress, pretrained=pretrained)
    training_seconds = time.perf_counter() - started
    probabilities = ensemble.probabilities(validation.images) if len(validation) else np.zeros((0, len(class_names)))
    metrics = {**evaluate(probabilities, validation.labels, threshold), "train_count": len(train),
               "training_seconds": round(training_seconds, 1)}
    # Over a model (or anything else), the new one is made whole beside it and then installed, keeping the old in
    # <dir>.previous: a failure leaves the folder as it was. Into an empty folder (SageMaker's /opt/ml/model), in
    # place.
    replacing = holds_more_than(model_dir, [TRAIN_LOG])
    target = staging_model_dir(model_dir) if replacing else model_dir
    if replacing:
        shutil.rmtree(target, ignore_errors=True)
    try:
        write_artefacts(ensemble, target, metrics, extra, train, validation, probabilities, class_names)
        kept = install_model(target, model_dir, carry=[TRAIN_LOG]) if replacing else None
    finally:
        if replacing:
            shutil.rmtree(target, ignore_errors=True)
    if kept is not None and log is not None:
        log(f"{kept.sentence(model_dir)} (a new one trained over it)")
    return metrics


def write_artefacts(ensemble: TrainedEnsemble, model_dir: Path, metrics: dict[str, Any], extra: dict[str, Any],
                    train: ImageSet, validation: ImageSet, probabilities: np.ndarray, class_names: list[str]) -> None:
    """model.onnx (checked against torch), metadata.json, baseline.json and the validation report."""
    write_model(ensemble, model_dir, metrics, extra)
    baseline_probabilities = probabilities if len(validation) else ensemble.probabilities(train.images)
    # baseline.json names the model's sha256 and metadata.json the baseline's: one model, whatever carries them
    write_model_metadata(model_dir, bind_baseline(model_dir, build_baseline(train.images, baseline_probabilities,
                                                                            class_names),
                                                  read_model_metadata(model_dir)))
    sample = validation.images[:64] if len(validation) else train.images[:64]
    difference = check_export(ensemble, model_dir / "model.onnx", sample)
    if difference > EXPORT_TOLERANCE:
        raise ExportMismatchError(f"ONNX and torch differ by {difference:.2e} (> {EXPORT_TOLERANCE})")
    report = {
        "summary": metrics,
        "class_names": class_names,
        "temperature": ensemble.temperature,
        "onnx_max_abs_difference": difference,
        "reliability": reliability_bins(probabilities.max(1), probabilities.argmax(1) == validation.labels,
                                        low=1 / len(class_names)) if len(validation) else [],
        "confusion": [[int(((validation.labels == t) & (probabilities.argmax(1) == p)).sum())
                       for p in range(len(class_names))] for t in range(len(class_names))],
        "predictions": [{"file": name, "label": class_names[int(label)],
                         "probabilities": [round(float(v), 6) for v in row]}
                        for name, label, row in zip(validation.names, validation.labels, probabilities, strict=True)],
        "history": ensemble.history,
    }
    write_json(model_dir / REPORT_FILE, report)


def add_reviewed(train: ImageSet, validation: ImageSet, class_names: list[str], labels: str | Path, *,
                 bucket_dir: Path | None = None, s3: Any | None = None, log: Callable[[str], None] | None = None,
                 ) -> tuple[ImageSet, ImageSet, dict[str, Any]]:
    """(training set with the reviewed images, validation set without them, what was used)."""
    manifests = read_manifests(labels, s3=s3)
    reviewed = select_reviewed(manifests, class_names, hashes_of(train.images, train.labels),
                               ImageReader(bucket_dir=bucket_dir, s3=s3), log=log)
    report = {"source": str(labels), **reviewed.report()}
    if not reviewed.labels:
        return train, validation, report
    joined = ImageSet(np.concatenate([train.images, np.stack(reviewed.pixels)]),
                      np.concatenate([train.labels, np.array(reviewed.labels, dtype=np.int64)]),
                      [*train.names, *reviewed.refs])
    added = set(reviewed.hashes)
    keep = np.array([content_hash(pixels) not in added for pixels in validation.images], dtype=bool)
    report["removed_from_validation"] = int((~keep).sum())
    return joined, validation.subset(np.flatnonzero(keep)), report
