"""Helpers shared by unit and integration tests."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    """Load a file from events/: the same files `sam local invoke -e` uses."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


def png_bytes(width: int = 32, height: int = 32, *, seed: int = 0, mode: str = "RGB") -> bytes:
    """A random-noise PNG (noise does not compress, so byte sizes are predictable)."""
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class LambdaContextStub:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def labelled_folder(root: Path, per_class: int = 12, side: int = 32) -> Path:
    """Two easily separable classes (reddish vs bluish noise), RGBA like the shared CIFAR images."""
    rng = np.random.default_rng(0)
    for label, channel in (("bicycle", 0), ("motorcycle", 2)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (side, side, 4), dtype=np.uint8)
            pixels[..., channel] += 170
            pixels[..., 3] = 255
            Image.fromarray(pixels).save(root / label / f"{label}_s_{i:06d}.png")
    return root
