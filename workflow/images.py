"""Sample images for the demo: real CIFAR-100 pictures when the shared data is there, else generated ones."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar100_bicycle_motorcycle"


def demo_images() -> Iterator[tuple[str, bytes]]:
    for label in ("bicycle", "motorcycle"):
        folder = SHARED_DATA / "train" / label
        files = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if files:
            yield f"test/{files[0].name}", files[0].read_bytes()
            continue
        pixels = np.random.default_rng(len(label)).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        yield f"test/{label}_generated.png", buffer.getvalue()
