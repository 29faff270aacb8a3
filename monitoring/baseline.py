"""The training-time baseline that captured traffic is compared with.

Stored next to the model as baseline.json: the validation set's top confidences and predicted class
mix, and per-image statistics of the training images (brightness, mean of each colour channel).
Samples are kept, not just histograms, so the drift check can run a two-sample test as well as PSI.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imaging.preprocess import to_model_input

LUMA = np.array([0.299, 0.587, 0.114])


def image_features(images: np.ndarray) -> dict[str, list[float]]:
    """Per-image brightness and channel means in [0, 1], for (N, H, W, 3) uint8 images."""
    pixels = images.reshape(len(images), -1, 3).astype(np.float64) / 255.0
    channel_means = pixels.mean(axis=1)
    return {
        "brightness": (channel_means @ LUMA).round(5).tolist(),
        "red": channel_means[:, 0].round(5).tolist(),
        "green": channel_means[:, 1].round(5).tolist(),
        "blue": channel_means[:, 2].round(5).tolist(),
    }


def decode_images(payloads: list[bytes]) -> np.ndarray:
    """Captured request bodies back to (N, 32, 32, 3) uint8: what the model saw, by the one preprocessing."""
    images = [np.asarray(to_model_input(payload), dtype=np.uint8) for payload in payloads]
    return np.stack(images) if images else np.zeros((0, 32, 32, 3), np.uint8)


def build_baseline(train_images: np.ndarray, validation_probabilities: np.ndarray,
                   class_names: list[str]) -> dict[str, Any]:
    predicted = validation_probabilities.argmax(1) if len(validation_probabilities) else np.zeros(0, int)
    mix = np.bincount(predicted, minlength=len(class_names)) / max(1, len(predicted))
    return {
        "class_names": class_names,
        "confidence": validation_probabilities.max(1).round(5).tolist() if len(validation_probabilities) else [],
        "class_mix": mix.round(5).tolist(),
        "features": image_features(train_images),
    }
