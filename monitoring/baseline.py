"""The training-time baseline: built here at training time, read and validated by the drift core.

The document's format and its validation live in driftcheck.baseline (the CheckDriftFunction reads
the same file on AWS); this module adds what needs the image preprocessing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.artefacts import read_baseline
from driftcheck.baseline import Baseline, build_baseline, image_features
from imaging.preprocess import MODEL_SIDE
from monitoring.capture import decode_image

__all__ = ["Baseline", "build_baseline", "decode_images", "image_features", "load_baseline"]


def decode_images(payloads: list[bytes]) -> np.ndarray:
    """Captured request bodies back to (N, 32, 32, 3) uint8: what the model saw, by the one preprocessing."""
    images = [decode_image(payload) for payload in payloads]
    return np.stack(images) if images else np.zeros((0, MODEL_SIDE, MODEL_SIDE, 3), np.uint8)


def load_baseline(path: Path) -> Baseline:
    """baseline.json, validated: ArtefactError when it is missing or not JSON, BaselineError when unusable."""
    return Baseline.from_dict(read_baseline(path), str(path))
