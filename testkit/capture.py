"""Synthetic data capture in the endpoint's exact format and key layout, for the monitoring tests.

Images are noise around a brightness; probabilities have one value per class of the template's ClassNames, with a
tunable top confidence and class mix, so a test can make traffic that matches a baseline or drifts in one named
feature.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from common import settings
from data_prep.serving.capture import capture_record, object_key
from imaging.preprocess import MODEL_SIDE

START = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)
CLASSES = settings.class_names()
ENDPOINT = settings.endpoint_name()


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def images(count: int, seed: int, brightness: float = 0.5) -> np.ndarray:
    """(count, side, side, 3) uint8 noise images, the model's input size, whose mean brightness is about
    `brightness`."""
    rng = np.random.default_rng(seed)
    base = rng.normal(brightness * 255, 40, (count, 1, 1, 3))
    return np.clip(base + rng.normal(0, 25, (count, MODEL_SIDE, MODEL_SIDE, 3)), 0, 255).astype(np.uint8)


def probabilities(count: int, seed: int, motorcycle_share: float = 0.5, sharpness: float = 8.0,
                  classes: int | None = None) -> np.ndarray:
    """(count, classes) probabilities, one column per class (default: the template's ClassNames). The top one follows
    Beta(sharpness, 1) clipped to [0.5, 0.999]; it falls on the second class (motorcycle) for `motorcycle_share` of
    the rows and on the others evenly for the rest; the other classes share what is left."""
    columns = classes if classes is not None else len(CLASSES)
    rng = np.random.default_rng(seed)
    top = np.clip(rng.beta(sharpness, 1, count), 0.5, 0.999)
    second = rng.random(count) < motorcycle_share
    others = [c for c in range(columns) if c != 1]
    winner = np.where(second, 1, np.array(others)[rng.integers(0, len(others), count)] if columns > 2 else 0)
    rows = np.repeat(((1 - top) / (columns - 1))[:, None], columns, axis=1)
    rows[np.arange(count), winner] = top
    return rows


def write_capture(folder: Path, pixels: np.ndarray, probs: np.ndarray, *, per_file: int = 25,
                  variant: str = "AllTraffic", start: datetime = START) -> list[dict[str, Any]]:
    """Files in the endpoint's key layout under `folder`, `per_file` records each, one second apart."""
    records = []
    for first in range(0, len(pixels), per_file):
        when = start + timedelta(seconds=first)
        lines = []
        for offset, (image, p) in enumerate(zip(pixels[first:first + per_file], probs[first:first + per_file],
                                                strict=True)):
            record = capture_record(png(image), "image/png", json.dumps([round(float(v), 6) for v in p]).encode(),
                                    "application/json", when + timedelta(seconds=offset))
            records.append(record)
            lines.append(json.dumps(record))
        path = folder / object_key(ENDPOINT, variant, when)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return records


def output_text(top: float = 0.9, classes: int | None = None) -> str:
    """An endpoint answer as captured: `top` on the first class, the rest shared evenly, one probability per class
    (default: the template's ClassNames), so `[0.9, 0.1]` for two classes and `[0.9, 0.05, 0.05]` for three."""
    columns = classes if classes is not None else len(CLASSES)
    return json.dumps([top] + [round((1 - top) / (columns - 1), 6)] * (columns - 1))


def record_line(*, data: str | None = None, encoding: str = "BASE64", output: str | None = None,
                when: datetime = START, content_type: str = "image/png") -> str:
    """One capture line with a hand-made input and output (for malformed-record tests); the output is a valid answer
    for the template's ClassNames unless given."""
    request = {"observedContentType": content_type, "mode": "INPUT", "data": data if data is not None else "",
               "encoding": encoding}
    response = {"observedContentType": "application/json", "mode": "OUTPUT",
                "data": output if output is not None else output_text(), "encoding": "JSON"}
    return json.dumps({"captureData": {"endpointInput": request, "endpointOutput": response},
                       "eventMetadata": {"eventId": "e", "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
                       "eventVersion": "0"})
