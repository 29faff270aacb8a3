"""The training-time baseline that captured traffic is compared with, and the image features both are made of.

baseline.json (written next to the model by `python -m data_prep train local`): the class names in
training order, the validation set's top confidences and predicted class mix, per-image statistics
of the training images (brightness, mean of each colour channel), and `model_sha256`: the model it
was written with, which every drift verdict names. Samples are kept, not
histograms, so the check can run a two-sample test as well as PSI. A baseline is validated when it
is read: the check refuses, by name, one it cannot use, rather than crash halfway.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftcheck.errors import BaselineError, ClassSetMismatchError

LUMA = np.array([0.299, 0.587, 0.114])
IMAGE_FEATURES = ("brightness", "red", "green", "blue")
MIX_TOLERANCE = 1e-3


def image_features(images: np.ndarray) -> dict[str, list[float]]:
    """Per-image brightness and channel means in [0, 1], for (N, H, W, 3) uint8 images (none: empty lists, as a
    window without traffic has)."""
    channel_means = ((images.reshape(len(images), -1, 3).astype(np.float64) / 255.0).mean(axis=1) if len(images)
                     else np.zeros((0, 3)))
    return {
        "brightness": (channel_means @ LUMA).round(5).tolist(),
        "red": channel_means[:, 0].round(5).tolist(),
        "green": channel_means[:, 1].round(5).tolist(),
        "blue": channel_means[:, 2].round(5).tolist(),
    }


def build_baseline(train_images: np.ndarray, validation_probabilities: np.ndarray,
                   class_names: list[str]) -> dict[str, Any]:
    """The baseline.json document for a model: what `Baseline.parse` reads back."""
    predicted = validation_probabilities.argmax(1) if len(validation_probabilities) else np.zeros(0, int)
    mix = np.bincount(predicted, minlength=len(class_names)) / max(1, len(predicted))
    return {
        "class_names": class_names,
        "confidence": validation_probabilities.max(1).round(5).tolist() if len(validation_probabilities) else [],
        "class_mix": mix.round(5).tolist(),
        "features": image_features(train_images),
    }


def _sample(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise BaselineError(f"{where} must be a non-empty list of numbers")
    if not all(type(item) in (int, float) and math.isfinite(item) for item in value):
        raise BaselineError(f"{where} holds a value that is not a finite number")
    return np.asarray(value, dtype=float)


@dataclass(frozen=True)
class Baseline:
    class_names: tuple[str, ...]
    confidence: np.ndarray
    class_mix: np.ndarray
    features: dict[str, np.ndarray]
    model_sha256: str | None = None  # the model it was written with (its ONNX file's sha256); None: not recorded

    @classmethod
    def from_dict(cls, document: Any, source: str = "baseline") -> Baseline:
        """Validate a parsed baseline.json; BaselineError names the first field it cannot use."""
        if not isinstance(document, dict):
            raise BaselineError(f"{source} is not a JSON object")
        names = document.get("class_names")
        if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) and n for n in names):
            raise BaselineError(f"{source}: class_names must list at least two class names")
        mix = _sample(document.get("class_mix"), f"{source}: class_mix")
        if len(mix) != len(names) or np.any(mix < 0) or abs(float(mix.sum()) - 1.0) > MIX_TOLERANCE:
            raise BaselineError(f"{source}: class_mix must hold one share per class ({len(names)}), summing to 1")
        features = document.get("features")
        if not isinstance(features, dict):
            raise BaselineError(f"{source}: features is missing")
        model = document.get("model_sha256")
        if model is not None and not (isinstance(model, str) and model):
            raise BaselineError(f"{source}: model_sha256 must be the sha256 of the model it was written with")
        return cls(
            class_names=tuple(names),
            confidence=_sample(document.get("confidence"), f"{source}: confidence"),
            class_mix=mix,
            features={name: _sample(features.get(name), f"{source}: features.{name}") for name in IMAGE_FEATURES},
            model_sha256=model,
        )

    @classmethod
    def parse(cls, text: str | bytes, source: str = "baseline") -> Baseline:
        try:
            document = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BaselineError(f"{source} is not valid JSON ({error})") from None
        return cls.from_dict(document, source)

    def require_classes(self, class_names: Sequence[str], what: str) -> None:
        """Refuse, by name, a model or stack whose classes are not the baseline's (same names, same order)."""
        if tuple(class_names) != self.class_names:
            raise ClassSetMismatchError(f"the baseline's classes are {', '.join(self.class_names)} but {what}'s are "
                                        f"{', '.join(class_names)}: use the baseline written with this model")
