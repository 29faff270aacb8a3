"""The metrics every report uses, and the gate a new model must pass before it replaces the old one.

One metrics function, `evaluate`: accuracy; at the confidence threshold T, coverage (the share of
images passing the filter) and precision (accuracy among those); log loss. It is built from per-image
quantities (`per_image`) and their means (`rates`), so the gate's bootstrap resamples exactly what
the table reports.

The gate (`compare`, `gate`; `python -m data_prep evaluate`) scores both models on the same images
and estimates each metric's difference, NEW minus OLD, with a paired bootstrap: images are resampled
with replacement (`resamples` times, 2,000 by default, seeded), both models are scored on each
resample, and the 2.5th and 97.5th percentiles of the differences are the 95% interval. Pairing by
image removes the images' own difficulty from the comparison, which makes the interval far narrower
than comparing two separate estimates.

NEW is **worse** on a gated metric (accuracy, and precision at T: what a driver sees) when either
    - the interval lies wholly below zero (the data show it worse), or
    - the observed difference is below -margin (1 point by default): worse by more than we accept,
      even where a small evaluation set cannot show it significantly.
It is promoted when it is worse on neither; coverage and log loss are reported, not gated (a model
that passes more images at the same precision is better, not riskier). A resample where a model
passes no image at T has no precision; such resamples are left out of that metric's interval. A NEW
model that passes no image at all is worse than an OLD one that passes some; when the OLD one passes
none, there is nothing to be worse than.

**Live traffic** (`--audits BUCKET`, and the closed loop): the evaluation images are a dataset's, not
what the endpoint sees. With a bucket whose decisions people labelled, both models are also judged on
that traffic, each labelled decision weighted by the share of traffic it stands for
(modelquality.assess.traffic_sample): an audit, a confident decision drawn at AuditRate, for 1/AuditRate
confident decisions; a labelled low-confidence item for the low-confidence decisions it was drawn from.
The audits are what make the sample unbiased: the items people were asked about are only the hard cases.
The same paired bootstrap gives the intervals (weighted means on each resample); a gated metric is worse
on traffic only when its interval lies wholly below zero (a handful of heavily weighted audits must not
hold a model by their noise alone). NEW is held when it is worse on either.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.artefacts import read_gate_verdict
from common.errors import ExitStatus, NamedError
from common.progress import Progress
from common.stats import percentile
from data_prep.errors import DataPrepError
from modelquality.assess import LabelLine, TrafficSample, load, traffic_sample
from modelquality.records import Decision

if TYPE_CHECKING:
    from common.model_archive import ResolvedModel

METRICS = ("accuracy", "coverage", "precision_at_threshold", "log_loss")
GATED = ("accuracy", "precision_at_threshold")
LOWER_IS_BETTER = frozenset({"log_loss"})
DEFAULT_RESAMPLES = 2000
DEFAULT_MARGIN = 0.01
RESAMPLE_CHUNK = 250


class GateCannotRunError(DataPrepError):
    """The two models cannot be compared on these images: different classes, or no images (exit 2)."""


class GateHeldError(NamedError):
    """The gate's verdict on the candidate is hold: it must not replace the served model (exit 1, a check failed)."""

    exit_status = ExitStatus.CHECK_FAILED


class GateOtherModelError(DataPrepError):
    """The gate's verdict is about other bytes than the model being deployed (exit 2)."""


class GateOtherBaselineError(DataPrepError):
    """The gate judged the candidate against another model than the one the endpoint serves (exit 2)."""


def require_promotion(gate_file: Path, model_sha256: str | None = None,
                      archive_sha256: str | None = None) -> dict[str, Any]:
    """The gate's table when its verdict is promote for these bytes: the model whose ONNX file has `model_sha256`,
    in the archive whose sha256 is `archive_sha256` (the bytes that will serve, code/ included), when given;
    GateOtherModelError when it judged other bytes, GateHeldError naming the metrics it was worse on otherwise."""
    table = read_gate_verdict(gate_file)
    judged = table.get("new_model") or {}
    for key, wanted, what in (("model_sha256", model_sha256, "model"), ("archive_sha256", archive_sha256, "archive")):
        if wanted is None:
            continue
        if not judged.get(key):
            raise GateOtherModelError(f"{gate_file} does not record which {what} it judged (a gate file from before "
                                      f"gates recorded {key}): run `.venv/bin/python -m data_prep evaluate` again")
        if judged[key] != wanted:
            raise GateOtherModelError(f"the gate in {gate_file} judged the {what} with sha256 {judged[key][:12]}..., "
                                      f"not this one ({wanted[:12]}...): evaluate the {what} you deploy")
    if table["verdict"] != "promote":
        worse = ", ".join(table.get("worse_on") or []) or "a gated metric"
        raise GateHeldError(f"the gate in {gate_file} held this model (worse on {worse}): it is not rolled out")
    return table


def require_served_baseline(table: dict[str, Any], gate_file: Path, endpoint_name: str, served: dict[str, str]) -> None:
    """The gate judged NEW against what `endpoint_name` serves now (`served`: its model's SCONES_MODEL_SHA256,
    SCONES_ARCHIVE_SHA256 and ModelDataUrl): a promote against any other model, the candidate itself included,
    says nothing about replacing the live one. GateOtherBaselineError otherwise, naming what to evaluate against."""
    baseline = table.get("baseline_model") or {}
    pairs = [("model_sha256", served.get("model_sha256")), ("archive_sha256", served.get("archive_sha256"))]
    if any(not baseline.get(key) or baseline.get(key) != value for key, value in pairs):
        judged = ", ".join(f"{key} {str(baseline.get(key))[:12]}..." for key, _ in pairs)
        serving = ", ".join(f"{key} {str(value)[:12]}..." for key, value in pairs)
        raise GateOtherBaselineError(
            f"the gate in {gate_file} judged NEW against {judged}, but endpoint {endpoint_name} serves {serving}: "
            f"evaluate against what serves (`.venv/bin/python -m data_prep evaluate --baseline-model "
            f"{served.get('model_data_url') or '<its ModelDataUrl>'} ...`)")


@dataclass(frozen=True)
class PerImage:
    correct: np.ndarray  # bool: the top class is the true one
    confident: np.ndarray  # bool: the top probability reaches the threshold
    log_loss: np.ndarray  # -log p(true class)


def per_image(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> PerImage:
    predicted = probabilities.argmax(1)
    true_probability = probabilities[np.arange(len(labels)), labels]
    return PerImage(predicted == labels, probabilities.max(1) >= threshold,
                    -np.log(np.clip(true_probability, 1e-12, 1)))


def rates(images: PerImage, index: np.ndarray | None = None,
          weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each metric's value; with `index` (resamples x images), one value per resample; with `weights` (per image),
    weighted means. Precision is NaN where no image passes the threshold."""
    take = (lambda values: values[np.newaxis]) if index is None else (lambda values: values[index])
    correct, confident = take(images.correct), take(images.confident)
    weight = take(weights) if weights is not None else np.ones(correct.shape)
    total = weight.sum(1)
    passing = (weight * confident).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(passing > 0, (weight * (correct & confident)).sum(1) / passing, np.nan)
    return {"accuracy": (weight * correct).sum(1) / total, "coverage": passing / total,
            "precision_at_threshold": precision, "log_loss": (weight * take(images.log_loss)).sum(1) / total}


def evaluate(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, and at the threshold: coverage (share passing) and precision among those passing."""
    if len(labels) == 0:
        return {"count": 0}
    values = {name: float(value[0]) for name, value in rates(per_image(probabilities, labels, threshold)).items()}
    return {
        "count": int(len(labels)),
        "accuracy": round(values["accuracy"], 4),
        "threshold": threshold,
        "coverage": round(values["coverage"], 4),
        "precision_at_threshold": 0.0 if np.isnan(values["precision_at_threshold"])
        else round(values["precision_at_threshold"], 4),
        "log_loss": round(values["log_loss"], 4),
    }


@dataclass(frozen=True)
class GateConfig:
    threshold: float
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    margin: float = DEFAULT_MARGIN
    level: float = 0.95


@dataclass
class Comparison:
    """The gate's table: each metric for both models and the interval of their difference, and the verdict."""

    config: GateConfig
    count: int
    rows: list[dict[str, Any]]
    new: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # new_model / baseline_model: which bytes
    traffic: Comparison | None = None  # the same on labelled live traffic (see the module docstring)
    sample: dict[str, Any] = field(default_factory=dict)  # what the traffic table was judged on

    @property
    def worse_on(self) -> list[str]:
        own = [row["metric"] for row in self.rows if row["worse"]]
        return own + ([f"{metric} on live traffic" for metric in self.traffic.worse_on] if self.traffic else [])

    @property
    def promote(self) -> bool:
        return not self.worse_on

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": "promote" if self.promote else "hold",
            "worse_on": self.worse_on,
            "images": self.count,
            "threshold": self.config.threshold,
            "rule": (f"NEW is worse on a gated metric ({', '.join(GATED)}) when the {self.config.level:.0%} paired "
                     f"bootstrap interval of NEW - OLD lies below 0, or the difference is below -{self.config.margin}"),
            "bootstrap": {"resamples": self.config.resamples, "seed": self.config.seed, "level": self.config.level,
                          "paired": "images resampled with replacement; both models scored on each resample"},
            "metrics": self.rows,
            "new": self.new,
            "baseline": self.baseline,
            **self.models,
            **({"traffic": {"images": self.traffic.count, "sample": self.traffic.sample,
                            "rule": "NEW is worse on a gated metric when the paired bootstrap interval of NEW - OLD "
                                    "(weighted means) lies below 0",
                            "metrics": self.traffic.rows}} if self.traffic else {}),
        }


def compare(new: np.ndarray, baseline: np.ndarray, labels: np.ndarray, config: GateConfig,
            progress: Progress | None = None, weights: np.ndarray | None = None) -> Comparison:
    """Both models' probabilities on the same images (same class order) to the gate's table; with `weights`, each
    image counts that much (the metrics are weighted means)."""
    if len(labels) == 0:
        raise GateCannotRunError("there are no images to compare the models on")
    new_images, old_images = (per_image(p, labels, config.threshold) for p in (new, baseline))
    new_observed, old_observed = rates(new_images, weights=weights), rates(old_images, weights=weights)
    observed = {name: (new_observed[name][0], old_observed[name][0]) for name in METRICS}
    generator = np.random.default_rng(config.seed)
    differences: dict[str, list[np.ndarray]] = {name: [] for name in METRICS}
    for start in range(0, config.resamples, RESAMPLE_CHUNK):
        size = min(RESAMPLE_CHUNK, config.resamples - start)
        index = generator.integers(0, len(labels), (size, len(labels)))
        new_rates, old_rates = rates(new_images, index, weights), rates(old_images, index, weights)
        for name in METRICS:
            differences[name].append(new_rates[name] - old_rates[name])
        if progress:
            progress(start + size, config.resamples, "bootstrap")
    tail = (1 - config.level) / 2 * 100
    rows = []
    for name in METRICS:
        drawn = np.concatenate(differences[name])
        drawn = drawn[~np.isnan(drawn)].tolist()
        new_value, old_value = (float(v) for v in observed[name])
        difference = new_value - old_value
        low = percentile(drawn, tail) if drawn else float("nan")
        high = percentile(drawn, 100 - tail) if drawn else float("nan")
        # No precision (no image passes T): NEW without one is worse than an OLD with one; an OLD without one
        # leaves nothing for NEW to be worse than.
        worse = name in GATED and not np.isnan(old_value) and (
            np.isnan(new_value) or high < 0 or difference < -config.margin)
        rows.append({"metric": name, "new": _round(new_value), "baseline": _round(old_value),
                     "difference": _round(difference), "ci_low": _round(low), "ci_high": _round(high),
                     "resamples_used": len(drawn), "gated": name in GATED, "worse": bool(worse),
                     "better_is": "lower" if name in LOWER_IS_BETTER else "higher"})
    return Comparison(config, int(len(labels)), rows, evaluate(new, labels, config.threshold),
                      evaluate(baseline, labels, config.threshold))


@dataclass(frozen=True)
class LabelledTraffic:
    """Live decisions people labelled, as images to score: pixels, true labels, and the traffic each stands for."""

    images: np.ndarray  # (N, MODEL_SIDE, MODEL_SIDE, 3) uint8
    labels: np.ndarray  # indices into the models' class order
    weights: np.ndarray
    sample: dict[str, Any]  # counts and weights by stratum, for the table


def labelled_traffic(sample: TrafficSample, class_names: Sequence[str], read: Callable[[str], bytes],
                     log: Callable[[str], None] | None = None) -> LabelledTraffic:
    """The sample's images (read by key from the bucket, through the one preprocessing); one that cannot be read is
    left out and named."""
    from imaging.preprocess import MODEL_SIDE, ImageTooLargeError, NotAnImageError, to_model_input

    pixels, labels, weights, unreadable = [], [], [], []
    for judged in sample.judged:
        try:
            data = read(judged.decision.s3_key)
            pixels.append(np.asarray(to_model_input(data), dtype=np.uint8))
        except (OSError, NotAnImageError, ImageTooLargeError) as error:
            unreadable.append(judged.decision.source_ref)
            if log:
                log(f"warning: {judged.decision.source_ref} cannot be read ({error}): left out of the traffic sample")
            continue
        labels.append(list(class_names).index(judged.truth))
        weights.append(judged.weight)
    images = np.stack(pixels) if pixels else np.zeros((0, MODEL_SIDE, MODEL_SIDE, 3), np.uint8)
    return LabelledTraffic(images, np.array(labels, dtype=np.int64), np.array(weights, dtype=np.float64),
                           {**sample.counts, "weights": sample.weights, "unreadable": len(unreadable)})


def table_rows(comparison: dict[str, Any]) -> list[dict[str, str]]:
    """The gate's table (Comparison.as_dict) as text cells, for the commands that print it."""
    rows = []
    for row in comparison["metrics"]:
        rows.append({
            "metric": row["metric"], "new": str(row["new"]), "baseline": str(row["baseline"]),
            "difference": "n/a" if row["difference"] is None else f"{row['difference']:+.4f}",
            "interval": "n/a" if row["ci_low"] is None else f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]",
            "gate": ("WORSE" if row["worse"] else "ok") if row["gated"] else f"not gated ({row['better_is']} is "
                                                                               "better)",
        })
    return rows


def traffic_from_bucket(source: str, class_names: Sequence[str], *, s3: Any | None = None,
                        extra_labels: Sequence[LabelLine] = (), excluded: Callable[[Decision], bool] | None = None,
                        log: Callable[[str], None] | None = None) -> LabelledTraffic:
    """The labelled live traffic of a bucket (s3://bucket, or a folder that mirrors one): its decision records and
    its labels (and `extra_labels`, such as a labels file given apart), weighted (modelquality.assess)."""
    from monitoring.quality import open_bucket

    bucket = open_bucket(source, s3)
    inputs = load(bucket)
    inputs.labels.extend(extra_labels)
    sample = traffic_sample(inputs, class_names, excluded=excluded)
    return labelled_traffic(sample, class_names, bucket.read, log)


def traffic_rows(comparison: dict[str, Any]) -> list[dict[str, str]] | None:
    """The gate's table on live traffic as text cells (None without one)."""
    return table_rows(comparison["traffic"]) if comparison.get("traffic") else None


def traffic_title(comparison: dict[str, Any]) -> str:
    sample = comparison["traffic"]["sample"]
    audit, low = (_weights(sample["weights"][kind]) for kind in ("audit", "low_confidence"))
    return (f"live traffic: {sample['audits_labelled']} labelled audits (each for {audit} confident decisions) and "
            f"{sample['low_confidence_labelled']} labelled low-confidence items (each for {low})")


def _weights(values: list[float]) -> str:
    return "/".join(f"{value:g}" for value in values) or "none"


def _round(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


@dataclass(frozen=True)
class Judged:
    """A model as the gate judges it: its folder, which bytes serve it (`identity`: the model's sha256, the
    archive's and its code/'s, recorded in the gate's table), and whether its answers come from the archive's own
    hooks (its code/ is not this repository's) or from `serve`'s Predictor (the same code, byte for byte)."""

    model_dir: Path
    identity: dict[str, Any]
    hooks: bool = False

    def probabilities(self, images: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
        if self.hooks:
            from data_prep.serving.hooks_runner import hook_probabilities

            return hook_probabilities(self.model_dir, images, class_names)
        return aligned_probabilities(self.model_dir, images, class_names)


SCORED_BY_PREDICTOR = "data_prep serve's Predictor (the archive's code/ is this repository's, byte for byte)"
SCORED_BY_HOOKS = "the archive's own code/inference.py hooks (isolated interpreter; this environment's packages)"
FOREIGN_CODE_REMEDY = ("what it answers was never scored; score it through its own hooks with "
                       "`.venv/bin/python -m data_prep evaluate --score-with-hooks`, or package the model again")


def judged(model: ResolvedModel, workdir: Path, *, score_with_hooks: bool = False) -> Judged:
    """`model` (common.model_archive.resolve_model) as the gate judges it. A folder is judged as the archive
    `package` writes for it (its sha256 recorded: what `deploy --model-dir` ships); an archive as itself, through
    `serve`'s Predictor when its code/ is this repository's, else through its own hooks when `score_with_hooks`,
    else refused (ForeignCodeError, exit 2: its answers would go unscored)."""
    from data_prep.packaging import code_differences, package_model, require_our_code

    identity = model.describe()
    if model.archive is None:
        packaged = package_model(model.model_dir, workdir / "package" / "model.tar.gz")
        identity.update({"archive_sha256": packaged.archive_sha256, "code_sha256": packaged.code_sha256,
                         "packaged": "the archive `data_prep package` writes for this folder"})
        return Judged(model.model_dir, {**identity, "scored_by": SCORED_BY_PREDICTOR})
    if score_with_hooks and code_differences(model.code_dir):
        return Judged(model.model_dir, {**identity, "scored_by": SCORED_BY_HOOKS}, hooks=True)
    require_our_code(model, FOREIGN_CODE_REMEDY)
    return Judged(model.model_dir, {**identity, "scored_by": SCORED_BY_PREDICTOR})


def judged_folder(model_dir: Path) -> Judged:
    """A model folder as the gate judges it (see `judged`)."""
    import tempfile

    from common.model_archive import resolve_model

    with tempfile.TemporaryDirectory(prefix="scones-gate-") as scratch:
        return judged(resolve_model(model_dir, Path(scratch)), Path(scratch))


def aligned_probabilities(model_dir: Path, images: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """The model's probabilities on `images`, columns in `class_names` order."""
    from data_prep.serving.predictor import Predictor

    predictor = Predictor(model_dir)
    order = [predictor.class_names.index(name) for name in class_names]
    outputs = [predictor.forward(images[start:start + 256]) for start in range(0, len(images), 256)]
    probabilities = np.concatenate(outputs) if outputs else np.zeros((0, len(class_names)), np.float32)
    return probabilities[:, order]


def gate(new_model: Path | Judged, baseline_model: Path | Judged, data_dir: Path, config: GateConfig, *,
         split: str = "test", progress: Progress | None = None, log: Callable[[str], None] | None = None,
         traffic: LabelledTraffic | None = None) -> Comparison:
    """Score both models on the evaluation images, and on the labelled live traffic when given, and compare them
    (see the module's docstring). The table records which bytes each is (`Judged.identity`): a folder is judged as
    the archive `package` writes for it."""
    from common.model_archive import verify_model_dir
    from data_prep.training.data import load_evaluation_set

    new, old = (model if isinstance(model, Judged) else judged_folder(model) for model in (new_model, baseline_model))
    new_metadata, old_metadata = verify_model_dir(new.model_dir), verify_model_dir(old.model_dir)
    new_classes, old_classes = (list(map(str, m["class_names"])) for m in (new_metadata, old_metadata))
    if sorted(new_classes) != sorted(old_classes):
        raise GateCannotRunError(f"the models' class sets differ: {new.identity['reference']} has {new_classes}, "
                                 f"{old.identity['reference']} has {old_classes}")
    images = load_evaluation_set(data_dir, new_classes, split=split, log=log)
    if len(images) == 0:
        raise GateCannotRunError(f"{data_dir} holds no {split!r} images to compare the models on")
    comparison = compare(new.probabilities(images.images, new_classes), old.probabilities(images.images, new_classes),
                         images.labels, config, progress)
    comparison.models = {"new_model": new.identity, "baseline_model": old.identity}
    if traffic is not None and len(traffic.labels):
        live = compare(new.probabilities(traffic.images, new_classes), old.probabilities(traffic.images, new_classes),
                       traffic.labels, replace(config, margin=math.inf), progress, weights=traffic.weights)
        live.sample = traffic.sample
        comparison.traffic = live
    return comparison
