"""The monitoring report: one self-contained HTML page that reads like a dashboard, plus its PNG plots and a
summary.json for scripts.

Top to bottom: a headline verdict (healthy, drift, degraded or no data) with the reasons and the
thresholds that decided it; the key figures in words and percentages; the production variants side
by side when the capture holds more than one; the drift check's result per feature (with a
baseline) and, beside it, live precision: what the audits people labelled blind say about automatic
decisions, over time (`--audits BUCKET`: monitoring.quality); then the plots (confidence of each
inference over time with the threshold, top confidence per predicted class, share below the threshold
and class mix over time, the least confident images, and with labels a reliability diagram and
accuracy against coverage with the threshold recommended for a target precision); and the malformed
capture records, listed.

The verdict, in order: `drift` when any feature drifted (see driftcheck.checks); `degraded` when the
share sent to review exceeds the template's LowConfidenceAlarmRate (the rate the deployed alarm
uses), when the labelled accuracy of passed items falls below the target precision, or when more
than 1% of capture records are malformed; `healthy` otherwise; `no data` without valid records.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from PIL import Image  # noqa: E402

from common import settings  # noqa: E402
from common.artefacts import read_manifest  # noqa: E402
from common.errors import InputError  # noqa: E402
from common.hints import hint  # noqa: E402
from common.progress import Progress  # noqa: E402
from driftcheck.baseline import Baseline  # noqa: E402
from driftcheck.capture import UNNAMED_VARIANT, CaptureSet  # noqa: E402
from driftcheck.checks import DriftConfig, DriftResult, Window, check_drift  # noqa: E402
from driftcheck.errors import CaptureNotFoundError, InsufficientDataError  # noqa: E402
from imaging.preprocess import (  # noqa: E402
    MODEL_SIDE,
    ImageTooLargeError,
    NotAnImageError,
    content_hash,
    to_model_input,
)
from monitoring.calibration import reliability_bins  # noqa: E402
from monitoring.capture import read_capture  # noqa: E402
from monitoring.drift import TEST_SHORT, p_text  # noqa: E402
from monitoring.quality import Assessment, precision_over_time  # noqa: E402

MALFORMED_LIMIT = 0.01  # more than this share of capture records malformed: the capture itself is degraded
MALFORMED_LISTED = 50
HEALTHY, DRIFT, DEGRADED, NO_DATA = "healthy", "drift", "degraded", "no data"


def image_identity(pixels: np.ndarray) -> str:
    """The content hash (imaging.preprocess.content_hash) of an already decoded (H, W, 3) uint8 model input: the
    identity the dataset's manifest, the review labels and the audits use."""
    return content_hash(Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)))


class DatasetImageError(InputError):
    """A file the dataset's manifest lists is not an image the model can read (truncated, not an image, too large)."""


def labels_from_dataset(dataset: Path, *, decode_all: bool = False) -> dict[str, str]:
    """Content hash -> true label for every image in data_prep's manifest (labels never come from names). The
    manifest records each image's content hash; a manifest written before it did has its images decoded once, and
    `decode_all` decodes every image (the offline run: each must decode before anything runs). A file that does not
    decode is a DatasetImageError naming it."""
    labels = {}
    for row in read_manifest(dataset).values():
        if row.content_hash and not decode_all:
            labels[row.content_hash] = row.label
            continue
        path = dataset / row.file
        try:
            labels[content_hash(to_model_input(path.read_bytes()))] = row.label
        except (NotAnImageError, ImageTooLargeError) as error:
            raise DatasetImageError(f"{path} in the dataset's manifest is not a readable image ({error}): rebuild the "
                                    f"dataset with `{hint('data_prep transform')}`") from error
    return labels


@dataclass
class Traffic:
    """The capture as arrays, ready to plot."""

    confidence: np.ndarray
    predicted: np.ndarray
    variants: list[str]
    images: np.ndarray

    @classmethod
    def of(cls, capture: CaptureSet) -> Traffic:
        records = capture.records
        images = capture.images if capture.images is not None else np.zeros((0, MODEL_SIDE, MODEL_SIDE, 3), np.uint8)
        return cls(confidence=np.array([r.confidence for r in records], dtype=float),
                   predicted=np.array([r.predicted for r in records], dtype=int),
                   variants=[r.variant for r in records], images=images)


def variant_label(variant: str) -> str:
    return variant if variant != UNNAMED_VARIANT else "(no variant in the key)"


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) == 0:
        return values
    window = max(1, min(window, len(values)))
    cumulative = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    means = (cumulative[window:] - cumulative[:-window]) / window
    return np.concatenate([np.cumsum(values[: window - 1]) / np.arange(1, window), means])


# Plots -------------------------------------------------------------------------------------------------------

def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _integer_x(axis: plt.Axes) -> None:
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_confidence_over_time(traffic: Traffic, threshold: float, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(9, 4))
    below = traffic.confidence < threshold
    axis.scatter(np.flatnonzero(~below), traffic.confidence[~below], s=8, color="tab:green", label="passed")
    axis.scatter(np.flatnonzero(below), traffic.confidence[below], s=8, color="tab:red", label="sent to review")
    axis.axhline(threshold, color="black", linestyle="--", label=f"threshold {threshold}")
    axis.set(xlabel="inference (in time order)", ylabel="top confidence", ylim=(0.45, 1.01),
             title="Confidence of each inference")
    _integer_x(axis)
    axis.legend(loc="lower left")
    return _save(figure, path)


def plot_precision_over_time(series: list[dict[str, Any]], target: float, path: Path) -> Path:
    """Live precision per period with its 95% Wilson interval, against the target precision."""
    figure, axis = plt.subplots(figsize=(9, 4))
    starts = [datetime.fromisoformat(point["start"]) for point in series]
    values = np.array([point["precision"] for point in series])
    low = np.array([point["precision_interval"][0] for point in series])
    high = np.array([point["precision_interval"][1] for point in series])
    axis.errorbar(starts, values, yerr=[values - low, high - values], fmt="o", capsize=3,  # type: ignore[arg-type]
                  color="tab:blue",
                  label="precision of audited decisions (95% interval)")
    axis.axhline(target, color="black", linestyle="--", label=f"target {target}")
    axis.set(ylabel="precision", ylim=(max(0.0, min(low.min(), target) - 0.05), 1.01),
             title="Live precision of automatic decisions (labelled audits)")
    figure.autofmt_xdate()
    axis.legend(loc="lower left")
    return _save(figure, path)


def plot_confidence_by_class(traffic: Traffic, class_names: list[str], threshold: float, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(9, 4))
    bins = np.linspace(0.5, 1.0, 26).tolist()
    for index, name in enumerate(class_names):
        axis.hist(traffic.confidence[traffic.predicted == index], bins=bins, alpha=0.6, label=name)
    axis.axvline(threshold, color="black", linestyle="--")
    axis.set(xlabel="top confidence", ylabel="inferences", title="Top confidence by predicted class")
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend()
    return _save(figure, path)


def plot_confidence_by_variant(traffic: Traffic, variants: list[str], threshold: float, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(9, 4))
    bins = np.linspace(0.5, 1.0, 26).tolist()
    names = np.array(traffic.variants)
    for variant in variants:
        axis.hist(traffic.confidence[names == variant], bins=bins, histtype="step", linewidth=2,
                  label=variant_label(variant))
    axis.axvline(threshold, color="black", linestyle="--")
    axis.set(xlabel="top confidence", ylabel="inferences", title="Top confidence by production variant")
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend()
    return _save(figure, path)


def plot_below_threshold(traffic: Traffic, threshold: float, window: int, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(9, 3.5))
    axis.plot(rolling_mean((traffic.confidence < threshold).astype(float), window), color="tab:red")
    axis.set(xlabel="inference (in time order)", ylabel="share below threshold", ylim=(0, 1),
             title=f"Share below {threshold} (rolling {window})")
    _integer_x(axis)
    return _save(figure, path)


def plot_class_mix(traffic: Traffic, class_names: list[str], window: int, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(9, 3.5))
    for index, name in enumerate(class_names):
        axis.plot(rolling_mean((traffic.predicted == index).astype(float), window), label=name)
    axis.set(xlabel="inference (in time order)", ylabel="share", ylim=(0, 1),
             title=f"Predicted class mix (rolling {window})")
    _integer_x(axis)
    axis.legend()
    return _save(figure, path)


def plot_least_confident(traffic: Traffic, class_names: list[str], count: int, path: Path) -> Path:
    order = np.argsort(traffic.confidence, kind="stable")[:count]
    columns = 8
    rows = max(1, int(np.ceil(len(order) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.8))
    for axis in np.atleast_1d(axes).ravel():
        axis.axis("off")
    for axis, index in zip(np.atleast_1d(axes).ravel(), order, strict=False):
        axis.imshow(traffic.images[index])
        axis.set_title(f"{class_names[traffic.predicted[index]]}\n{traffic.confidence[index]:.2f}", fontsize=7)
    figure.suptitle("Least confident captured images")
    return _save(figure, path)


def coverage_curve(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each candidate threshold (each observed confidence), the coverage and the accuracy above it."""
    order = np.argsort(-confidence)
    hits = np.cumsum(correct[order])
    counted = np.arange(1, len(order) + 1)
    return confidence[order], counted / len(order), hits / counted


def recommend_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> dict[str, float] | None:
    """The lowest threshold whose passing items are at least `target` accurate (the widest coverage)."""
    thresholds, coverage, accuracy = coverage_curve(confidence, correct)
    meeting = np.flatnonzero(accuracy >= target)
    if len(meeting) == 0:
        return None
    best = meeting[-1]
    return {"threshold": round(float(thresholds[best]), 4), "coverage": round(float(coverage[best]), 4),
            "precision": round(float(accuracy[best]), 4)}


def plot_calibration(confidence: np.ndarray, correct: np.ndarray, threshold: float,
                     recommendation: dict[str, float] | None, target: float, classes: int, path: Path) -> Path:
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    low = 1 / classes
    rows = reliability_bins(confidence, correct, low)
    left.plot([low, 1], [low, 1], color="grey", linestyle=":", label="perfect calibration")
    left.scatter([(row["low"] + row["high"]) / 2 for row in rows], [row["accuracy"] for row in rows],
                 s=[20 + 3 * row["count"] for row in rows], color="tab:blue", label="observed")
    left.set(xlabel="top confidence", ylabel="accuracy", title="Reliability", xlim=(low, 1), ylim=(0, 1.02))
    left.legend(loc="lower right")
    _, coverage, accuracy = coverage_curve(confidence, correct)
    right.plot(coverage, accuracy, color="tab:blue")
    current = confidence >= threshold
    if current.any():
        right.scatter([current.mean()], [correct[current].mean()], color="black", zorder=3,
                      label=f"threshold {threshold}")
    if recommendation:
        right.scatter([recommendation["coverage"]], [recommendation["precision"]], color="tab:green", zorder=3,
                      label=f"recommended {recommendation['threshold']} for {target:.0%}")
    right.axhline(target, color="tab:green", linestyle=":")
    right.set(xlabel="coverage (share passed)", ylabel="accuracy of passed", title="Accuracy vs coverage",
              ylim=(min(0.5, float(accuracy.min()) - 0.02) if len(accuracy) else 0.5, 1.01))
    right.legend(loc="lower left")
    return _save(figure, path)


# Figures and verdict -----------------------------------------------------------------------------------------

def _share(part: int | float, whole: int | float) -> float:
    return round(float(part) / float(whole), 4) if whole else 0.0


def _mix(predicted: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    return {name: _share(int((predicted == index).sum()), len(predicted)) for index, name in enumerate(names)}


def variant_figures(traffic: Traffic, names: Sequence[str], threshold: float, variant: str,
                    correct: np.ndarray | None, known: np.ndarray | None) -> dict[str, Any]:
    """Per-variant confidence, share below the threshold, class mix and (with labels) accuracy."""
    inside = np.array([v == variant for v in traffic.variants], dtype=bool)
    confidence, predicted = traffic.confidence[inside], traffic.predicted[inside]
    figures: dict[str, Any] = {
        "inferences": int(inside.sum()), "share_of_traffic": _share(int(inside.sum()), len(traffic.variants)),
        "mean_confidence": round(float(confidence.mean()), 4) if len(confidence) else None,
        "below_threshold": _share(int((confidence < threshold).sum()), len(confidence)),
        "class_mix": _mix(predicted, names),
    }
    if correct is not None and known is not None:
        labelled = inside & known
        passed = labelled & (traffic.confidence >= threshold)
        figures["labelled"] = int(labelled.sum())
        figures["accuracy"] = _share(int(correct[labelled].sum()), int(labelled.sum())) if labelled.any() else None
        figures["accuracy_of_passed"] = _share(int(correct[passed].sum()), int(passed.sum())) if passed.any() else None
    return figures


@dataclass
class Verdict:
    state: str
    reasons: list[str] = field(default_factory=list)  # what decided the state, with the thresholds
    notes: list[str] = field(default_factory=list)  # what was not checked, and why
    recommendation: str | None = None  # the threshold the labelled inferences call for (with labels only)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reasons": self.reasons, "notes": self.notes,
                "recommendation": self.recommendation}


def recommendation_sentence(summary: dict[str, Any], threshold: float, target_precision: float) -> str | None:
    """The threshold recommended for the target precision on the labelled inferences, in words (None unlabelled)."""
    if "recommended_threshold" not in summary:
        return None
    recommended = summary["recommended_threshold"]
    if recommended is None:
        return (f"no threshold reaches the target precision {target_precision:.0%} on the {summary['labelled']} "
                f"labelled inferences: more training data, or people reviewing every image")
    return (f"recommended threshold {recommended['threshold']} (the stack's is {threshold}): on the "
            f"{summary['labelled']} labelled inferences {recommended['coverage']:.1%} would be decided "
            f"automatically, {recommended['precision']:.1%} of them right (target precision {target_precision:.0%})")


RESCORE_TOLERANCE = 1e-5  # the served answers are rounded to 6 decimals; the same bytes agree far closer than this
DEFAULT_RESCORED = 200


def rescore(capture: CaptureSet, forward: Callable[[np.ndarray], np.ndarray], limit: int = DEFAULT_RESCORED,
            tolerance: float = RESCORE_TOLERANCE) -> dict[str, Any]:
    """Run a sample of the captured inputs (up to `limit` per variant, spread over time) through the model
    (`forward`: images -> probabilities) and compare with what the endpoint answered: the same bytes give the
    same answers, so a difference above `tolerance` says the capture did not come from this model."""
    per_variant: dict[str, dict[str, Any]] = {}
    for variant in capture.variants:
        indices = [i for i, record in enumerate(capture.records) if record.variant == variant]
        chosen = sorted({indices[int(k)] for k in np.linspace(0, len(indices) - 1, min(limit, len(indices)))})
        answered = np.array([capture.records[i].probabilities for i in chosen], dtype=np.float64)
        assert capture.images is not None  # read with the decoder
        expected = forward(capture.images[chosen]).astype(np.float64)
        difference = np.abs(expected - answered).max(1) if expected.shape == answered.shape else np.full(
            len(chosen), np.inf)
        per_variant[variant] = {"sampled": len(chosen), "differing": int((difference > tolerance).sum()),
                                "max_difference": float(difference.max()) if len(chosen) else 0.0}
    return {"tolerance": tolerance, "per_variant": per_variant,
            "matches": any(v["sampled"] and not v["differing"] for v in per_variant.values())}


def rescore_lines(rescored: dict[str, Any], sha256: str) -> tuple[list[str], list[str]]:
    """(reasons the report is degraded, notes) from `rescore`: no variant answering as the model is a reason; a
    variant among several that does not is a note."""
    differing = [(variant, figures) for variant, figures in rescored["per_variant"].items() if figures["differing"]]
    lines = [f"{figures['differing']} of {figures['sampled']} re-scored inputs of variant {variant} were answered "
             f"otherwise than model sha256 {sha256[:12]}... answers them (by up to {figures['max_difference']:.2g} > "
             f"{rescored['tolerance']:g}): its capture did not come from these bytes" for variant, figures in differing]
    return ([], lines) if rescored["matches"] else (lines, [])


def decide(summary: dict[str, Any], drift: DriftResult | None, *, threshold: float, review_rate_limit: float,
           target_precision: float, notes: list[str]) -> Verdict:
    """The headline: drift, then degraded, then healthy (see the module docstring); with labels, the threshold
    they recommend."""
    if not summary["inferences"]:
        return Verdict(NO_DATA, [f"no valid inferences in the capture ({summary['malformed']} malformed records)"],
                       notes)
    recommendation = recommendation_sentence(summary, threshold, target_precision)
    drift_reasons: list[str] = []
    degraded: list[str] = []
    fine: list[str] = []
    if drift is not None:
        limits = drift.config
        for check in drift.checks:
            if check.drifted:
                p = p_text(check.p_value)
                drift_reasons.append(f"{check.label} drifted: PSI {check.psi:.2f} ≥ {limits.psi_threshold} and "
                                     f"p {p if p.startswith('<') else '= ' + p} < {limits.p_value} ({check.test}, "
                                     f"{check.baseline} → {check.window})")
        if not drift_reasons:
            fine.append(f"no feature drifted over {drift.samples} inferences (a feature drifts when PSI ≥ "
                        f"{limits.psi_threshold} and p < {limits.p_value})")
    review = summary["below_threshold"]
    sentence = (f"{review:.1%} of inferences fell below the {threshold} confidence threshold (sent to review); "
                f"the limit is {review_rate_limit:.0%}, the template's LowConfidenceAlarmRate")
    (degraded if review > review_rate_limit else fine).append(sentence)
    passed_accuracy = summary.get("accuracy_of_passed")
    if passed_accuracy is not None:
        sentence = (f"{1 - passed_accuracy:.1%} of automatic decisions were wrong (accuracy of passed inferences "
                    f"{passed_accuracy:.1%}, of {summary['labelled_passed']} labelled); the target precision is "
                    f"{target_precision:.0%}, at most {1 - target_precision:.0%} wrong")
        (degraded if passed_accuracy < target_precision else fine).append(sentence)
    if summary.get("rescored") and summary.get("model"):
        reasons, more_notes = rescore_lines(summary["rescored"], summary["model"]["model_sha256"])
        degraded += reasons
        notes = notes + more_notes
    malformed_share = _share(summary["malformed"], summary["malformed"] + summary["inferences"])
    if malformed_share > MALFORMED_LIMIT:
        degraded.append(f"{summary['malformed']} malformed capture records ({malformed_share:.1%} of records; the "
                        f"limit is {MALFORMED_LIMIT:.0%})")
    if drift_reasons:
        return Verdict(DRIFT, drift_reasons + degraded, notes, recommendation)
    if degraded:
        return Verdict(DEGRADED, degraded, notes, recommendation)
    return Verdict(HEALTHY, fine, notes, recommendation)


def report_summary(page: Path) -> dict[str, Any]:
    """What write_report wrote beside its page (summary.json), its verdict included."""
    summary: dict[str, Any] = json.loads(page.with_name("summary.json").read_text())
    return summary


# The page ----------------------------------------------------------------------------------------------------

STYLE = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1200px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:1.6em;margin:.4em 0 .1em} h2{font-size:1.2em;margin:1.6em 0 .5em}
.meta{color:#57606a;margin:0 0 1em;overflow-wrap:anywhere}
.verdict{border-left:8px solid;border-radius:8px;padding:12px 18px;background:#fff}
.verdict h2{margin:.1em 0 .3em;font-size:1.4em}
.verdict ul{margin:.3em 0;padding-left:1.2em}
.healthy{border-color:#1a7f37;background:#dafbe1} .drift{border-color:#cf222e;background:#ffebe9}
.degraded{border-color:#bf8700;background:#fff8c5} .no-data{border-color:#6e7781;background:#eaeef2}
.notes{color:#57606a}
.scroll{overflow-x:auto;background:#fff;border:1px solid #d0d7de;border-radius:6px}
table{border-collapse:collapse;width:100%}
th,td{padding:6px 12px;border-bottom:1px solid #d8dee4;text-align:left;vertical-align:top}
td.number{text-align:right;font-variant-numeric:tabular-nums}
tr.drifted td{background:#ffebe9;font-weight:600}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,520px),1fr));gap:16px}
figure{margin:0;background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px}
figure img{display:block;width:100%;height:auto}
figcaption{color:#57606a;font-size:.9em;margin-top:4px}
details li{overflow-wrap:anywhere;font-family:ui-monospace,monospace;font-size:.85em}
"""


def _escape(value: Any) -> str:
    return html.escape(str(value))


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _mix_text(mix: dict[str, float]) -> str:
    return ", ".join(f"{name} {share:.1%}" for name, share in mix.items())


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: Sequence[int] = (),
           classes: Sequence[str] | None = None) -> str:
    """A table whose first column heads each row; `numeric` columns are right-aligned."""
    header = "".join(f"<th scope='col'>{_escape(cell)}</th>" for cell in head)
    body = []
    for index, row in enumerate(rows):
        cells = "".join(f"<th scope='row'>{_escape(cell)}</th>" if column == 0 else
                        f"<td class='number'>{_escape(cell)}</td>" if column in numeric else
                        f"<td>{_escape(cell)}</td>" for column, cell in enumerate(row))
        css = f" class='{classes[index]}'" if classes and classes[index] else ""
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<div class='scroll'><table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def summary_rows(summary: dict[str, Any], threshold: float, target_precision: float) -> list[tuple[str, str]]:
    """The key figures, in words and percentages."""
    rows = [
        ("Inferences", f"{summary['inferences']:,} from {summary['files']:,} capture "
                       f"{'file' if summary['files'] == 1 else 'files'}"),
        ("Time span", summary.get("time_span") or "—"),
        ("Malformed records", f"{summary['malformed']:,}"
         + (f" ({_share(summary['malformed'], summary['malformed'] + summary['inferences']):.1%})"
            if summary["malformed"] else "")),
    ]
    if summary["inferences"]:
        rows += [
            (f"Sent to review (top confidence below {threshold})",
             f"{summary['below_threshold']:.1%} ({summary['below_threshold_count']:,})"),
            ("Mean top confidence", f"{summary['mean_confidence']:.3f}"),
            ("Predicted class mix", _mix_text(summary["class_mix"])),
        ]
    if "accuracy" in summary:
        rows += [("Accuracy, all labelled inferences", f"{_percent(summary['accuracy'])} of {summary['labelled']:,}"),
                 ("Accuracy of passed inferences", f"{_percent(summary['accuracy_of_passed'])} of "
                                                   f"{summary['labelled_passed']:,}")]
        recommended = summary.get("recommended_threshold")
        rows.append((f"Threshold for {target_precision:.0%} precision",
                     f"{recommended['threshold']} (passes {recommended['coverage']:.1%} at "
                     f"{recommended['precision']:.1%} precision)" if recommended else "none reaches it"))
    if len(summary.get("variants", [])) > 1:
        rows.append(("Production variants", ", ".join(summary["variants"])))
    model = summary.get("model")
    if model:
        rows.append(("Model (sha256)", str(model["model_sha256"])))
        if model.get("archive_sha256"):
            rows.append(("Model archive (sha256)", f"{model['archive_sha256']} ({model.get('archive')})"))
    rescored = summary.get("rescored")
    if rescored:
        rows.append(("Captured answers re-scored with this model", "; ".join(
            f"{variant_label(variant)}: {f['sampled'] - f['differing']} of {f['sampled']} within "
            f"{rescored['tolerance']:g} (largest difference {f['max_difference']:.2g})"
            for variant, f in rescored["per_variant"].items())))
    baseline_model = (summary.get("drift") or {}).get("baseline_model_sha256")
    if summary.get("drift"):
        rows.append(("Drift baseline of model (sha256)", str(baseline_model or "not recorded in the baseline")))
    return rows


def variants_table(per_variant: dict[str, dict[str, Any]], names: Sequence[str]) -> str:
    variants = list(per_variant)
    head = ["", *(variant_label(v) for v in variants)]
    rows: list[list[str]] = [
        ["Inferences", *(f"{f['inferences']:,} ({f['share_of_traffic']:.0%})" for f in per_variant.values())],
        ["Mean top confidence", *(f"{f['mean_confidence']:.3f}" if f["mean_confidence"] is not None else "—"
                                  for f in per_variant.values())],
        ["Sent to review", *(_percent(f["below_threshold"]) for f in per_variant.values())],
    ]
    rows += [[f"Predicted {name}", *(_percent(f["class_mix"][name]) for f in per_variant.values())] for name in names]
    if all("accuracy" in f for f in per_variant.values()):
        rows.append(["Accuracy (labelled)", *(f"{_percent(f['accuracy'])} of {f['labelled']:,}"
                                              for f in per_variant.values())])
        rows.append(["Accuracy of passed", *(_percent(f["accuracy_of_passed"]) for f in per_variant.values())])
    return _table(head, rows, numeric=range(1, len(head)))


def drift_section(drift: DriftResult | None, note: str | None) -> str:
    if drift is None:
        return f"<p class='notes'>{_escape(note or 'No drift check.')}</p>"
    limits = drift.config
    rows = [[check.label, f"{check.psi:.3f}", f"{p_text(check.p_value)} ({TEST_SHORT.get(check.test, check.test)})",
             f"{check.baseline} → {check.window}", "DRIFTED" if check.drifted else "no"] for check in drift.checks]
    table = _table(["Feature", "PSI", "p-value (test)", "Baseline → this window", "Drifted"], rows, numeric=(1, 2),
                   classes=["drifted" if check.drifted else "" for check in drift.checks])
    owner = f" of model sha256 {_escape(drift.baseline_model_sha256)}" if drift.baseline_model_sha256 else ""
    return (f"<p>{drift.samples:,} inferences against the training baseline{owner}. A feature drifts when its PSI "
            f"reaches {limits.psi_threshold} <em>and</em> its test gives p &lt; {limits.p_value} (KS: two-sample "
            f"Kolmogorov-Smirnov; χ²: chi-square on the class counts).</p>{table}")


def live_quality_section(quality: dict[str, Any] | None, figure: str) -> str:
    """Live precision from the labelled audits: the figures, the verdict's reason, and the plot over time."""
    if quality is None:
        return ("<p class='notes'>No audits read: live precision was not judged (monitoring report --audits BUCKET; "
                "`workflow run` reads its OUT/bucket).</p>")
    interval = quality["precision_interval"]
    rows = [["Audited decisions with a label", f"{quality['audited']:,} of {quality['decisions']['audits']:,} audits"],
            ["Precision (95% interval)", "n/a" if quality["precision"] is None else
             f"{_percent(quality['precision'])} [{_percent(interval[0])}, {_percent(interval[1])}]"],
            ["Target precision", _percent(quality["target_precision"])],
            ["Review rate (estimated)", _percent(quality["review_rate"])],
            ["Drivers misrouted (estimated)", _percent(quality["misrouted_share"])],
            ["Audits waiting for a label", f"{quality['backlog']['unlabelled_audits']:,}"]]
    return (f"<p id='live-quality' data-verdict='{_escape(quality['verdict'])}'>{_escape(quality['reason'])}</p>"
            f"{_table(['', 'Value'], rows)}{figure}")


def _figure(path: Path, caption: str) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure><img alt='{_escape(caption)}' src='data:image/png;base64,{encoded}'>"
            f"<figcaption>{_escape(caption)}</figcaption></figure>")


def render_page(summary: dict[str, Any], verdict: Verdict, *, threshold: float, target_precision: float,
                names: Sequence[str], per_variant: dict[str, dict[str, Any]], drift: DriftResult | None,
                drift_note: str | None, plots: list[tuple[Path, str]], malformed: list[str],
                live_quality: str = "") -> str:
    css_state = verdict.state.replace(" ", "-")
    reasons = "".join(f"<li>{_escape(reason)}</li>" for reason in verdict.reasons)
    notes = "".join(f"<li>{_escape(note)}</li>" for note in verdict.notes)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Model monitoring: {_escape(verdict.state)}</title><style>{STYLE}</style></head><body><main>",
        "<h1>Scones Unlimited model monitoring</h1>",
        f"<p class='meta'>Capture {_escape(summary['capture'])} · generated {_escape(summary['generated'])}</p>",
        f"<section class='verdict {css_state}' id='verdict' data-verdict='{_escape(verdict.state)}'>",
        f"<h2>{_escape(verdict.state.capitalize())}</h2><ul>{reasons}</ul>",
        f"<p class='recommendation'>{_escape(verdict.recommendation[:1].upper() + verdict.recommendation[1:])}.</p>"
        if verdict.recommendation else "",
        f"<ul class='notes'>{notes}</ul>" if notes else "",
        "</section>",
        "<h2>Summary</h2>",
        _table(["", "Value"], [list(row) for row in summary_rows(summary, threshold, target_precision)]),
    ]
    if len(per_variant) > 1:
        parts += ["<h2>Production variants side by side</h2>", variants_table(per_variant, names)]
    parts += ["<h2>Drift against the training baseline</h2>", drift_section(drift, drift_note)]
    if live_quality:
        parts += ["<h2>Live precision (labelled audits)</h2>", live_quality]
    if plots:
        parts += ["<h2>Plots</h2><div class='plots'>", *(_figure(path, caption) for path, caption in plots), "</div>"]
    if malformed:
        listed = "".join(f"<li>{_escape(line)}</li>" for line in malformed[:MALFORMED_LISTED])
        more = f" (first {MALFORMED_LISTED} listed)" if len(malformed) > MALFORMED_LISTED else ""
        parts += [f"<h2>Malformed capture records</h2><details><summary>{len(malformed):,} records{more}</summary>"
                  f"<ul>{listed}</ul></details>"]
    parts.append("</main></body></html>")
    return "".join(parts)


def _time_span(capture: CaptureSet) -> str | None:
    if not capture.records:
        return None
    first, last = capture.records[0].time.astimezone(UTC), capture.records[-1].time.astimezone(UTC)
    return f"{first:%Y-%m-%d %H:%M:%S} to {last:%Y-%m-%d %H:%M:%S} UTC"


def write_report(capture_location: str | Path, out: Path, *, class_names: list[str] | None = None,
                 labels: dict[str, str] | None = None, threshold: float | None = None,
                 target_precision: float | None = None, baseline: Baseline | None = None,
                 drift_config: DriftConfig | None = None, review_rate_limit: float | None = None, s3: Any = None,
                 allow_empty: bool = False, progress: Progress | None = None,
                 model: dict[str, Any] | None = None, live_quality: Assessment | None = None,
                 forward: Callable[[np.ndarray], np.ndarray] | None = None,
                 rescore_limit: int = DEFAULT_RESCORED) -> Path:
    """Write the plots, summary.json and report.html under `out`; return the page's path.

    `model` says which model the report describes (common.model_archive.ResolvedModel.describe: its sha256);
    summary.json and the page carry it. With `forward` (that model's images -> probabilities), up to
    `rescore_limit` captured inputs per variant are re-scored and compared with the captured answers (`rescore`):
    the report says whether the capture came from these bytes.

    `threshold`, `target_precision` and `review_rate_limit` default to the template's ConfidenceThreshold,
    TargetPrecision and LowConfidenceAlarmRate. CaptureNotFoundError when the location does not exist or holds no
    capture files, unless `allow_empty` (the page then says there is no data). `live_quality` (monitoring.quality's
    assessment of a bucket's audits) adds live precision beside drift, with its plot over time.
    """
    threshold = settings.confidence_threshold() if threshold is None else threshold
    target_precision = settings.target_precision() if target_precision is None else target_precision
    review_rate_limit = settings.low_confidence_alarm_rate() if review_rate_limit is None else review_rate_limit
    try:
        capture = read_capture(capture_location, s3=s3, class_names=class_names, progress=progress)
    except CaptureNotFoundError:
        if not allow_empty:
            raise
        capture = CaptureSet(images=np.zeros((0, MODEL_SIDE, MODEL_SIDE, 3), np.uint8))
    if baseline is not None and class_names is not None:
        baseline.require_classes(class_names, "the model")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):
        stale.unlink()  # a plot the new capture does not call for must not linger from an earlier report
    traffic = Traffic.of(capture)
    width = len(capture.records[0].probabilities) if capture.records else 2
    names = list(class_names or (baseline.class_names if baseline else [f"class {i}" for i in range(width)]))
    variants = capture.variants
    summary: dict[str, Any] = {
        "capture": str(capture_location), "generated": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        "files": capture.files, "inferences": len(capture.records), "malformed": len(capture.malformed),
        "time_span": _time_span(capture), "threshold": threshold, "variants": variants,
    }
    if model is not None:
        summary["model"] = model
    if forward is not None and capture.records and rescore_limit > 0:
        summary["rescored"] = rescore(capture, forward, rescore_limit)
    notes: list[str] = []
    plots: list[tuple[Path, str]] = []
    correct = known = None
    if capture.records:
        window = max(5, len(capture.records) // 20)
        below = traffic.confidence < threshold
        summary.update({"below_threshold": _share(int(below.sum()), len(below)),
                        "below_threshold_count": int(below.sum()),
                        "mean_confidence": round(float(traffic.confidence.mean()), 4),
                        "class_mix": _mix(traffic.predicted, names)})
        plots = [
            (plot_confidence_over_time(traffic, threshold, out / "confidence_over_time.png"),
             "Top confidence of each inference; below the dashed threshold it goes to review."),
            (plot_confidence_by_class(traffic, names, threshold, out / "confidence_by_class.png"),
             "How confident the model is, per predicted class."),
            (plot_below_threshold(traffic, threshold, window, out / "below_threshold.png"),
             f"Share sent to review, rolling over {window} inferences."),
            (plot_class_mix(traffic, names, window, out / "class_mix.png"),
             f"Predicted class mix, rolling over {window} inferences."),
            (plot_least_confident(traffic, names, 16, out / "least_confident.png"),
             "The 16 least confident captured images, as the model saw them."),
        ]
        if len(variants) > 1:
            by_variant = plot_confidence_by_variant(traffic, variants, threshold, out / "confidence_by_variant.png")
            plots.insert(2, (by_variant, "Top confidence per production variant."))
    if labels and capture.records:
        truth = [labels.get(image_identity(image)) for image in traffic.images]
        known = np.array([t is not None for t in truth])
        correct = np.array([names[p] == t for p, t in zip(traffic.predicted, truth, strict=True)])
        if known.any():
            passed = known & (traffic.confidence >= threshold)
            recommendation = recommend_threshold(traffic.confidence[known], correct[known], target_precision)
            summary.update({"labelled": int(known.sum()), "accuracy": _share(int(correct[known].sum()),
                                                                              int(known.sum())),
                            "labelled_passed": int(passed.sum()),
                            "accuracy_of_passed": _share(int(correct[passed].sum()), int(passed.sum()))
                            if passed.any() else None,
                            "recommended_threshold": recommendation, "target_precision": target_precision})
            plots.append((plot_calibration(traffic.confidence[known], correct[known], threshold, recommendation,
                                           target_precision, len(names), out / "calibration.png"),
                          "Left: accuracy per confidence bin. Right: accuracy of what passes against the share that "
                          "passes, for every threshold."))
        else:
            correct = known = None
            notes.append("labels were given but none of the captured images is among them")
    per_variant = {variant: variant_figures(traffic, names, threshold, variant, correct, known)
                   for variant in variants}
    summary["per_variant"] = per_variant
    drift: DriftResult | None = None
    drift_note: str | None = None
    if baseline is None:
        drift_note = "No baseline given: drift was not checked (monitoring report --baseline, or --model-dir)."
    elif capture.records:
        try:
            drift = check_drift(baseline, Window.of(capture), drift_config or DriftConfig.load())
        except InsufficientDataError as error:
            drift_note = f"Drift not judged: {error}."
    else:
        drift_note = "Drift not judged: no valid inferences."
    if drift_note:
        notes.append(drift_note)
    summary["drift"] = drift.as_dict() if drift else None
    verdict = decide(summary, drift, threshold=threshold, review_rate_limit=review_rate_limit,
                     target_precision=target_precision, notes=notes)
    summary["verdict"] = verdict.as_dict()
    quality_html = ""
    if live_quality is not None:
        quality = live_quality.as_dict()
        series = precision_over_time(live_quality)
        summary["live_quality"] = {**{key: quality[key] for key in (
            "source", "verdict", "reason", "audited", "precision", "precision_interval", "target_precision",
            "review_rate", "misrouted_share", "decisions", "backlog")}, "over_time": series}
        figure = _figure(plot_precision_over_time(series, live_quality.target, out / "precision_over_time.png"),
                         "Live precision of automatic decisions per period, from the audits people labelled blind.") \
            if series else ""
        quality_html = live_quality_section(quality, figure)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    page_path = out / "report.html"
    page_path.write_text(render_page(summary, verdict, threshold=threshold, target_precision=target_precision,
                                     names=names, per_variant=per_variant, drift=drift, drift_note=drift_note,
                                     plots=plots, malformed=capture.malformed, live_quality=quality_html))
    return page_path
