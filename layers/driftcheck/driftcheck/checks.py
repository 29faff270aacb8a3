"""Compare a window of captured traffic with the training baseline: which features drifted, by how much.

One check per feature: top confidence and the four image statistics (PSI over the baseline's decile
buckets, and the Kolmogorov-Smirnov test), and the predicted class mix (PSI and the chi-square
test). A feature drifts when its PSI reaches `psi_threshold` AND its test rejects at p < `p_value`:
requiring both keeps small windows from alarming on noise and large windows from alarming on
differences too small to matter. The thresholds live in drift.json beside this module.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from driftcheck.baseline import IMAGE_FEATURES, Baseline, image_features
from driftcheck.capture import CaptureSet
from driftcheck.errors import ClassSetMismatchError, DriftConfigError, InsufficientDataError
from driftcheck.stats import categorical_psi, chi_square, ks_2samp, psi

DEFAULT_CONFIG = Path(__file__).with_name("drift.json")
CONTINUOUS_FEATURES = ("confidence", *IMAGE_FEATURES)
FEATURES = (*CONTINUOUS_FEATURES, "class_mix")
FEATURE_LABELS = {
    "confidence": "Top confidence",
    "brightness": "Brightness",
    "red": "Red channel mean",
    "green": "Green channel mean",
    "blue": "Blue channel mean",
    "class_mix": "Predicted class mix",
}
EXPECTED_FLOOR = 1e-6  # a class the baseline never predicted still gets a (tiny) expected count


@dataclass(frozen=True)
class DriftConfig:
    psi_threshold: float
    p_value: float
    min_samples: int
    bins: int

    @classmethod
    def load(cls, path: Path | None = None) -> DriftConfig:
        """The thresholds from a JSON file (keys starting with `_` are comments); default: drift.json here."""
        source = path or DEFAULT_CONFIG
        try:
            document = json.loads(source.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise DriftConfigError(f"{source} cannot be read as JSON: {error}") from None
        values = {key: value for key, value in document.items() if not key.startswith("_")}
        names = {field.name for field in fields(cls)}
        if set(values) != names:
            raise DriftConfigError(f"{source} must set exactly {', '.join(sorted(names))}")
        config = cls(psi_threshold=float(values["psi_threshold"]), p_value=float(values["p_value"]),
                     min_samples=int(values["min_samples"]), bins=int(values["bins"]))
        if not (config.psi_threshold > 0 and 0 < config.p_value < 1 and config.min_samples >= 2 and config.bins >= 2):
            raise DriftConfigError(f"{source}: psi_threshold > 0, 0 < p_value < 1, min_samples >= 2 and bins >= 2")
        return config


@dataclass(frozen=True)
class Window:
    """What the checks need from a window of traffic: top confidence, predicted class, image features."""

    confidence: np.ndarray
    predicted: np.ndarray
    features: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.confidence)

    @classmethod
    def of(cls, capture: CaptureSet) -> Window:
        if capture.images is None:
            raise ValueError("read the capture with a decoder: the image features need the images")
        return cls(
            confidence=np.array([record.confidence for record in capture.records], dtype=float),
            predicted=np.array([record.predicted for record in capture.records], dtype=int),
            features={name: np.asarray(values) for name, values in image_features(capture.images).items()},
        )


@dataclass(frozen=True)
class FeatureCheck:
    feature: str
    test: str  # "Kolmogorov-Smirnov" or "chi-square"
    psi: float
    p_value: float
    drifted: bool
    baseline: str  # what the baseline shows (mean, or class shares), for people
    window: str

    @property
    def label(self) -> str:
        return FEATURE_LABELS.get(self.feature, self.feature)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftResult:
    samples: int
    checks: tuple[FeatureCheck, ...]
    config: DriftConfig
    baseline_model_sha256: str | None = None  # whose baseline the window was compared with

    @property
    def drifted(self) -> list[str]:
        return [check.feature for check in self.checks if check.drifted]

    @property
    def verdict(self) -> str:
        return "drift" if self.drifted else "no drift"

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "samples": self.samples, "drifted": self.drifted,
                "baseline_model_sha256": self.baseline_model_sha256, "thresholds": asdict(self.config),
                "checks": [check.as_dict() for check in self.checks]}


def continuous_check(name: str, expected: np.ndarray, actual: np.ndarray, config: DriftConfig) -> FeatureCheck:
    value = psi(expected, actual, config.bins)
    _, p = ks_2samp(expected, actual)
    return FeatureCheck(name, "Kolmogorov-Smirnov", round(value, 4), p,
                        value >= config.psi_threshold and p < config.p_value,
                        f"mean {np.mean(expected):.3f}", f"mean {np.mean(actual):.3f}")


def class_mix_check(expected_share: np.ndarray, predicted: np.ndarray, names: tuple[str, ...],
                    config: DriftConfig) -> FeatureCheck:
    counts = np.bincount(predicted, minlength=len(names))
    actual_share = counts / counts.sum()
    value = categorical_psi(expected_share, actual_share)
    expected = np.clip(expected_share, EXPECTED_FLOOR, None)
    _, p = chi_square(counts, expected / expected.sum() * counts.sum())

    def shares(values: np.ndarray) -> str:
        return ", ".join(f"{name} {share:.0%}" for name, share in zip(names, values, strict=True))

    return FeatureCheck("class_mix", "chi-square", round(value, 4), p,
                        value >= config.psi_threshold and p < config.p_value, shares(expected_share),
                        shares(actual_share))


def check_drift(baseline: Baseline, window: Window, config: DriftConfig) -> DriftResult:
    """One check per feature; InsufficientDataError when the window is too small for a verdict."""
    if len(window) < config.min_samples:
        raise InsufficientDataError(f"{len(window)} valid inferences in the window, fewer than the "
                                    f"{config.min_samples} a verdict needs (min_samples): no verdict")
    if len(window.predicted) and int(window.predicted.max()) >= len(baseline.class_names):
        raise ClassSetMismatchError(f"the window predicts class {int(window.predicted.max())}, but the baseline has "
                                    f"{len(baseline.class_names)} classes ({', '.join(baseline.class_names)})")
    checks = [continuous_check("confidence", baseline.confidence, window.confidence, config)]
    checks += [continuous_check(name, baseline.features[name], window.features[name], config)
               for name in IMAGE_FEATURES]
    checks.append(class_mix_check(baseline.class_mix, window.predicted, baseline.class_names, config))
    return DriftResult(len(window), tuple(checks), config, baseline.model_sha256)
