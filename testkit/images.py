"""Generated images for tests and benchmarks: noise PNGs and a labelled folder of easily separable classes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

# An example class list for tests of the dataset and training mechanics, which do not depend on the template.
EXAMPLE_CLASSES = ("bicycle", "motorcycle")
# The colour channels each class's noise is lifted in, by class index: reddish, bluish, greenish, then mixtures.
CLASS_CHANNELS: tuple[tuple[int, ...], ...] = ((0,), (2,), (1,), (0, 1), (1, 2), (0, 2))


def png_bytes(width: int = 32, height: int = 32, *, seed: int = 0, mode: str = "RGB") -> bytes:
    """A random-noise PNG (noise does not compress, so byte sizes are predictable)."""
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buffer, format="PNG")
    return buffer.getvalue()


def labelled_folder(root: Path, per_class: int = 12, side: int = 32,
                    classes: Sequence[str] = EXAMPLE_CLASSES) -> Path:
    """`<label>/<image>` folders of easily separable classes (noise lifted in one colour per class: reddish, bluish,
    greenish, ...), RGBA like the shared CIFAR images. What goes through the template (`workflow run`, a model the
    stack serves) passes `settings.class_names()`; tests of the dataset and training mechanics keep the example pair."""
    names = list(classes)
    if len(names) > len(CLASS_CHANNELS):
        raise ValueError(f"at most {len(CLASS_CHANNELS)} generated classes, not {len(names)}")
    rng = np.random.default_rng(0)
    for label, channels in zip(names, CLASS_CHANNELS, strict=False):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (side, side, 4), dtype=np.uint8)
            for channel in channels:
                pixels[..., channel] += 170
            pixels[..., 3] = 255
            Image.fromarray(pixels).save(root / label / f"{label}_s_{i:06d}.png")
    return root


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit black PNG of `width` x `height` (400 megapixels by default) in about 50 KB: a decompression
    bomb. Written directly (Pillow would first allocate the whole image, taking seconds)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(bytes((1 + (width + 7) // 8) * height), 9)  # filter byte 0 + packed bits per row
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
