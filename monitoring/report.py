"""The monitoring report: plots of captured traffic and one self-contained HTML page.

Plots (PNG, also embedded in report.html so the page travels alone):
- confidence of each inference over time, with the threshold (the brief's figure);
- distribution of top confidence per predicted class; share below the threshold over time (rolling);
- predicted class mix over time (rolling); a contact sheet of the least confident captured images;
- with labels: accuracy, a reliability diagram, and accuracy against coverage with the threshold
  recommended for a target precision.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common import settings  # noqa: E402
from common.artefacts import read_manifest  # noqa: E402
from imaging.preprocess import to_model_input  # noqa: E402
from monitoring.calibration import reliability_bins  # noqa: E402
from monitoring.capture import CaptureSet, read_capture  # noqa: E402

DEFAULT_TARGET_PRECISION = 0.99


def pixel_key(image_bytes: bytes) -> str:
    """Identity of an image by the model input it becomes, so a re-encoded copy still finds its label."""
    return hashlib.sha256(to_model_input(image_bytes).tobytes()).hexdigest()


def labels_from_dataset(dataset: Path) -> dict[str, str]:
    """Pixel key -> true label for every image in data_prep's manifest (labels never come from names)."""
    return {pixel_key((dataset / row.file).read_bytes()): row.label for row in read_manifest(dataset).values()}


@dataclass
class Traffic:
    """The capture as arrays, ready to plot."""

    seconds: np.ndarray  # since the first inference
    confidence: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray
    inputs: list[bytes]

    @classmethod
    def of(cls, capture: CaptureSet) -> Traffic:
        records = capture.records
        start = records[0].time if records else None
        return cls(
            seconds=np.array([(r.time - start).total_seconds() for r in records]) if start else np.zeros(0),
            confidence=np.array([r.confidence for r in records]),
            predicted=np.array([r.predicted for r in records], dtype=int),
            probabilities=np.array([r.probabilities for r in records]) if records else np.zeros((0, 2)),
            inputs=[r.input for r in records],
        )


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) == 0:
        return values
    window = max(1, min(window, len(values)))
    cumulative = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    means = (cumulative[window:] - cumulative[:-window]) / window
    return np.concatenate([np.cumsum(values[: window - 1]) / np.arange(1, window), means])


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_confidence_over_time(traffic: Traffic, threshold: float, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(9, 4))
    below = traffic.confidence < threshold
    axis.scatter(np.flatnonzero(~below), traffic.confidence[~below], s=8, color="tab:green", label="passed")
    axis.scatter(np.flatnonzero(below), traffic.confidence[below], s=8, color="tab:red", label="sent to review")
    axis.axhline(threshold, color="black", linestyle="--", label=f"threshold {threshold}")
    axis.set(xlabel="inference (in time order)", ylabel="top confidence", ylim=(0.45, 1.01),
             title="Confidence of each inference")
    axis.legend(loc="lower left")
    return _save(figure, path)


def plot_confidence_by_class(traffic: Traffic, class_names: list[str], threshold: float, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(9, 4))
    bins = np.linspace(0.5, 1.0, 26).tolist()
    for index, name in enumerate(class_names):
        axis.hist(traffic.confidence[traffic.predicted == index], bins=bins, alpha=0.6, label=name)
    axis.axvline(threshold, color="black", linestyle="--")
    axis.set(xlabel="top confidence", ylabel="inferences", title="Top confidence by predicted class")
    axis.legend()
    return _save(figure, path)


def plot_below_threshold(traffic: Traffic, threshold: float, window: int, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(9, 3.5))
    axis.plot(rolling_mean((traffic.confidence < threshold).astype(float), window), color="tab:red")
    axis.set(xlabel="inference (in time order)", ylabel="share below threshold", ylim=(0, 1),
             title=f"Share below {threshold} (rolling {window})")
    return _save(figure, path)


def plot_class_mix(traffic: Traffic, class_names: list[str], window: int, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(9, 3.5))
    for index, name in enumerate(class_names):
        axis.plot(rolling_mean((traffic.predicted == index).astype(float), window), label=name)
    axis.set(xlabel="inference (in time order)", ylabel="share", ylim=(0, 1),
             title=f"Predicted class mix (rolling {window})")
    axis.legend()
    return _save(figure, path)


def plot_least_confident(traffic: Traffic, class_names: list[str], count: int, path: Path) -> Path:
    order = np.argsort(traffic.confidence)[:count]
    columns = 8
    rows = max(1, int(np.ceil(len(order) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.8))
    for axis in np.atleast_1d(axes).ravel():
        axis.axis("off")
    for axis, index in zip(np.atleast_1d(axes).ravel(), order, strict=False):
        axis.imshow(np.asarray(to_model_input(traffic.inputs[index])))
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


def _image_tag(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{encoded}"></figure>'


def write_report(capture_location: str | Path, out: Path, *, class_names: list[str] | None = None,
                 labels: dict[str, str] | None = None, threshold: float | None = None,
                 target_precision: float = DEFAULT_TARGET_PRECISION, s3: Any = None) -> Path:
    """Write the plots and report.html under `out`; return the page's path.

    `threshold` defaults to the template's ConfidenceThreshold.
    """
    threshold = settings.confidence_threshold() if threshold is None else threshold
    out.mkdir(parents=True, exist_ok=True)
    capture = read_capture(capture_location, s3=s3)
    traffic = Traffic.of(capture)
    width = traffic.probabilities.shape[1] if len(traffic.probabilities) else 2
    names = class_names or [f"class {i}" for i in range(width)]
    summary: dict[str, Any] = {
        "capture": str(capture_location), "files": capture.files, "inferences": len(capture.records),
        "malformed_lines": len(capture.malformed), "threshold": threshold,
    }
    plots: list[Path] = []
    if capture.records:
        window = max(5, len(capture.records) // 20)
        summary["below_threshold"] = round(float((traffic.confidence < threshold).mean()), 4)
        summary["class_mix"] = {n: round(float((traffic.predicted == i).mean()), 4) for i, n in enumerate(names)}
        plots = [
            plot_confidence_over_time(traffic, threshold, out / "confidence_over_time.png"),
            plot_confidence_by_class(traffic, names, threshold, out / "confidence_by_class.png"),
            plot_below_threshold(traffic, threshold, window, out / "below_threshold.png"),
            plot_class_mix(traffic, names, window, out / "class_mix.png"),
            plot_least_confident(traffic, names, 16, out / "least_confident.png"),
        ]
    if labels and capture.records:
        truth = [labels.get(pixel_key(payload)) for payload in traffic.inputs]
        known = np.array([t is not None for t in truth])
        if known.any():
            correct = np.array([names[p] == t for p, t in zip(traffic.predicted, truth, strict=True)])[known]
            confidence = traffic.confidence[known]
            recommendation = recommend_threshold(confidence, correct, target_precision)
            summary.update({"labelled": int(known.sum()), "accuracy": round(float(correct.mean()), 4),
                            "recommended_threshold": recommendation, "target_precision": target_precision})
            plots.append(plot_calibration(confidence, correct, threshold, recommendation, target_precision,
                                          len(names), out / "calibration.png"))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v))}</td></tr>"
                   for k, v in summary.items())
    problems = "".join(f"<li>{html.escape(line)}</li>" for line in capture.malformed[:50])
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Scones Unlimited model monitoring</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}img{max-width:100%}"
        "th{text-align:left;padding-right:1em}</style></head><body>"
        f"<h1>Model monitoring</h1><table>{rows}</table>"
        + (f"<h2>Malformed capture lines</h2><ul>{problems}</ul>" if problems else "")
        + "".join(_image_tag(path) for path in plots)
        + "</body></html>"
    )
    page_path = out / "report.html"
    page_path.write_text(page)
    return page_path
