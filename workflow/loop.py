"""The closed loop, offline: labels for what the model sent to review -> a retrained model -> the gate.

After the first pass of `python -m workflow run`, the test images the model was unsure of are in the
review queue (`OUT/bucket/review/`). People label them (the review page), or, for a demo, a labels
file stands in for them: any Ground Truth manifest, e.g. the test split's own labels
(`python -m data_prep ground-truth`, or `--loop-demo-labels`). Then:

1. **Split** the first pass's test images in two, by a stable hash of each image's key (SHA-256 of
   the key as a fraction of 2**256 below `holdout`: held back). The same image always lands on the same
   side, whatever else is in the run. Only the other side's images can be "reviewed"; the held-back side
   is never trained on, by either model.
2. **Retrain** on the training set plus the reviewed images (`train local --labels`: only labels of images the
   first pass sent to review and that are not held back; de-duplicated by content hash).
3. **Gate** the new model against the old on every held-back image (their true labels from the dataset
   manifest): `data_prep evaluate`'s paired bootstrap; promote when the new model is not worse on
   accuracy nor on precision at the threshold, hold otherwise. When the first pass recorded audits
   (`--audit-rate`) and the labels file labels some, both models are also judged on the labelled live
   traffic, as `data_prep evaluate --audits OUT/bucket` does: the audits (each for 1/AuditRate confident
   decisions: an unbiased sample of what was dispatched) and the held-back low-confidence items the labels
   cover (the review side trained the new model, so it cannot judge it).

Everything lands in `OUT/loop/`: `labels.jsonl` (what trained), `holdout/<label>/` (what judged),
`model/` (the candidate), `gate.json` (the table and the verdict).

4. **Promote or hold**: only a promoted candidate replaces the served model `OUT/model` (the one it
   replaced is kept in `OUT/model.previous`); a held one changes nothing. A model given with
   `--model-dir` outside `OUT` is never overwritten: the summary names the candidate to serve instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import settings
from common.artefacts import (
    KeptModel,
    S3Location,
    dataset_ground_truth,
    install_model,
    model_class_names,
    read_manifest,
    read_model_metadata,
    staging_model_dir,
    write_ground_truth_manifest,
    write_json,
)
from common.errors import InputError
from common.progress import Progress
from common.stats import stable_fraction
from data_prep.training.config import TrainConfig
from data_prep.training.evaluate import DEFAULT_RESAMPLES, GateConfig, LabelledTraffic, gate, traffic_from_bucket
from data_prep.training.reviewed import Manifest, read_manifests


class LoopLabelsError(InputError):
    """The labels file gives no label for any image the first pass sent to review (outside the held-back part)."""


DEFAULT_HOLDOUT = 0.5


def held_back(key: str, fraction: float) -> bool:
    """Stable: SHA-256 of the key, read as a number in [0, 1), below `fraction`."""
    return stable_fraction(key, 8) < fraction


@dataclass(frozen=True)
class LoopResult:
    decision: str  # promote | hold
    new_model: Path
    old_model: Path
    gate: dict[str, Any]
    labels_used: int
    summary: dict[str, Any]


def demo_labels(dataset: Path, out: Path, bucket: str = settings.OFFLINE_BUCKET) -> Path:
    """The test split's own labels as a Ground Truth manifest: perfect reviewers."""
    return write_ground_truth_manifest(out, dataset_ground_truth(dataset, "test", bucket))


def install_promoted(candidate: Path, served: Path) -> KeptModel | None:
    """Make `candidate` the served model: copied beside it, then installed as training installs a model
    (common.artefacts.install_model): `served` is always a whole model, and the old one is kept in
    `<served>.previous` (replacing an older one there, which the KeptModel returned says)."""
    staging = staging_model_dir(served)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(candidate, staging)
    return install_model(staging, served)


def live_traffic(layout: settings.Layout, labels: Path, manifests: list[Manifest], class_names: list[str],
                 trained_on: set[str], log: Callable[[str], None] | None = None) -> LabelledTraffic | None:
    """The first pass's decisions (OUT/bucket) with the labels file's labels, weighted as traffic (the review side
    left out: the new model trained on it); None when nothing there is labelled."""
    from modelquality.assess import LabelLine

    if not layout.bucket.is_dir():
        return None
    inside = labels.resolve().is_relative_to((layout.bucket / "labels").resolve())  # the bucket's own labels
    extra = [] if inside else [LabelLine(f"{manifest.where}:{number}", None, label) for manifest in manifests
                               for number, label in enumerate(manifest.labels, start=1)]
    traffic = traffic_from_bucket(str(layout.bucket), class_names, extra_labels=extra,
                                  excluded=lambda decision: decision.source_ref in trained_on, log=log)
    return traffic if len(traffic.labels) else None


def run_loop(dataset: Path, old_model: Path, layout: settings.Layout, labels: Path, reviewed_keys: list[str],
             test_keys: list[str], config: TrainConfig, *, holdout: float = DEFAULT_HOLDOUT,
             bucket: str = settings.OFFLINE_BUCKET, progress: Progress | None = None,
             resamples: int = DEFAULT_RESAMPLES, log: Callable[[str], None] | None = None) -> LoopResult:
    """Retrain on the labels of the images sent to review, then gate the new model on the held-back images."""
    from data_prep.training.local import train_local

    loop = layout.loop
    shutil.rmtree(loop, ignore_errors=True)
    loop.mkdir(parents=True)
    held = sorted(key for key in test_keys if held_back(key, holdout))
    review_side = {S3Location(bucket, key).uri for key in reviewed_keys if not held_back(key, holdout)}
    manifests = read_manifests(labels)
    chosen = [label for manifest in manifests for label in manifest.labels if label.source_ref in review_side]
    if not chosen:
        raise LoopLabelsError(
            f"{labels} labels none of the {len(review_side)} images the first pass sent to review outside the "
            f"held-back part (source-refs s3://{bucket}/<key>): nothing to retrain on")
    if not held:
        raise LoopLabelsError(f"no test image falls in the held-back part ({holdout:.0%}): the gate has nothing to "
                              "judge on; use more test images or a larger --loop-holdout")
    used_labels = write_ground_truth_manifest(loop / "labels.jsonl", chosen)
    rows = read_manifest(dataset)
    for key in held:
        target = loop / "holdout" / rows[key].label / Path(key).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dataset / key, target)
    new_model = loop / "model"
    metrics = train_local(dataset, new_model, config, progress=progress, labels=used_labels,
                          bucket_dir=layout.bucket, log=log)
    traffic = live_traffic(layout, labels, manifests, model_class_names(old_model), review_side, log)
    judging = GateConfig(threshold=settings.confidence_threshold(), resamples=resamples)
    comparison = gate(new_model, old_model, loop / "holdout", judging, log=log, traffic=traffic)
    table = comparison.as_dict()
    write_json(loop / "gate.json", table)
    reviewed = read_model_metadata(new_model).get("reviewed_labels", {})
    serving = old_model
    kept = None
    if table["verdict"] == "promote" and old_model.resolve() == layout.model.resolve():
        kept = install_promoted(new_model, layout.model)
        old_model, serving = kept.path if kept else layout.previous_model, layout.model
    elif table["verdict"] == "promote":
        serving = new_model  # the user's own --model-dir is theirs: never overwritten
    summary = {
        "decision": table["verdict"],
        "labels": str(labels),
        "labels_in_file": sum(len(m.labels) for m in manifests),
        "sent_to_review": len(reviewed_keys),
        "reviewed_and_labelled": len(chosen),
        "used_for_training": reviewed.get("used", 0),
        "held_back_images": len(held),
        "split": f"test images whose key's SHA-256, as a fraction of 2**64 over its first 8 bytes, is below "
                 f"{holdout} are held back from retraining and judge both models",
        "new_model": str(new_model),
        "old_model": str(old_model),
        "served_model": str(serving),
        "promoted_into": str(layout.model) if serving == layout.model else None,
        "replaced_older_previous": bool(kept and kept.replaced_older),  # only one previous model is kept
        "new_model_training": {"train_count": metrics.get("train_count"),
                               "training_seconds": metrics.get("training_seconds")},
        "gate": table,
        "judged_on_live_traffic": table.get("traffic", {}).get("sample"),
    }
    return LoopResult(table["verdict"], new_model, old_model, table, len(chosen), summary)
