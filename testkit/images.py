"""Generated images for tests and benchmarks: noise PNGs and a labelled folder of two separable classes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def png_bytes(width: int = 32, height: int = 32, *, seed: int = 0, mode: str = "RGB") -> bytes:
    """A random-noise PNG (noise does not compress, so byte sizes are predictable)."""
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buffer, format="PNG")
    return buffer.getvalue()


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
