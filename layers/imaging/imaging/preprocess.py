"""Image bytes to the model's input, the same way on every road.

serialize-image (before the state machine), the endpoint (for images posted straight to it),
training's transform (photos and captured images) and monitoring (captured requests) all call
`to_model_input`, so the model never sees an image prepared one way in training and another way
in serving. The steps, in order:

1. open the bytes (never trusting a name or content type) and read only the header;
2. refuse an image with more than `max_pixels` pixels before any pixel is allocated, and turn
   Pillow's own decompression-bomb guard into the same named error;
3. decode (JPEG at a reduced scale when the picture is much larger than the model's input);
4. apply the EXIF orientation, so a rotated phone photo stands as a person sees it;
5. map every mode to 8-bit RGB as a viewer shows it: 16- and 32-bit greyscale and float images
   are scaled (a plain conversion clips them to white), transparency is composited on white;
6. centre-crop to a square and downscale with LANCZOS to `side` x `side` (an image already that
   size keeps its exact pixels).

This module needs only Pillow, so the ImagingLayer stays small (no numpy).
"""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

MODEL_SIDE = 32
DEFAULT_MAX_PIXELS = 40_000_000
WHITE = (255, 255, 255, 255)
_TRANSPARENT_MODES = frozenset({"RGBA", "LA", "La", "RGBa", "PA"})
_WIDE_GREY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


class NotAnImageError(Exception):
    """The bytes are not an image Pillow can decode, whatever their name or content type says."""


class ImageTooLargeError(Exception):
    """The image has more pixels than allowed: refused before its pixels are decoded."""


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open `data` and check its size from the header only; nothing is decoded yet."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own bound below is stricter
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"image is far too large ({error}); the limit is {max_pixels}") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise NotAnImageError(f"the {len(data)} bytes are not a recognised image format") from error
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(f"image is {width}x{height} pixels; the limit is {max_pixels}")
    return image


def _decode(image: Image.Image, side: int) -> Image.Image:
    image.draft("RGB", (side * 4, side * 4))  # JPEG only: decode at a reduced scale, much faster for photos
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"the {image.format} image decompresses too far: {error}") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise NotAnImageError(f"the {image.format} image could not be decoded: {error}") from error
    return image


def _scaled_grey(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale to 8-bit, scaled as a viewer shows it (never clipped to white).

    16-bit modes keep their top 8 bits. A 32-bit integer or float image is read by its values: floats
    in [0, 1] are intensities, values within [0, 255] are 8-bit, within [0, 65535] 16-bit; anything
    else (negative samples, wider ranges) is stretched from its minimum to its maximum.
    """
    wide = image if image.mode == "F" else image.convert("I")
    low, high = (float(value) for value in wide.getextrema())  # type: ignore[arg-type]
    if image.mode not in {"I", "F"}:  # I;16 and its byte orders
        scale, offset = 1 / 256, 0.0
    elif low >= 0 and high <= 1 and image.mode == "F":
        scale, offset = 255.0, 0.0
    elif low >= 0 and high <= 255:
        scale, offset = 1.0, 0.0
    elif low >= 0 and high <= 65535:
        scale, offset = 1 / 256, 0.0
    else:
        scale = 255 / (high - low) if high > low else 1.0
        offset = -low * scale
    return wide.point(lambda value: value * scale + offset).convert("L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as the 8-bit RGB a person sees (transparency on white)."""
    if image.mode in _WIDE_GREY_MODES or image.mode == "F":
        image = _scaled_grey(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _TRANSPARENT_MODES:
        rgba = image.convert("RGBA") if image.mode != "La" else image.convert("LA").convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def prepare(image: Image.Image, side: int = MODEL_SIDE) -> Image.Image:
    """Steps 3 to 6 on an image `open_image` returned: decode, orient, RGB as seen, crop and downscale."""
    image = to_rgb(ImageOps.exif_transpose(_decode(image, side)))
    if image.size != (side, side):
        image = ImageOps.fit(image, (side, side), method=Image.Resampling.LANCZOS)
    return image


def to_model_input(data: bytes, *, side: int = MODEL_SIDE, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode `data` into the model's input: a `side` x `side` RGB image, as a person would see it."""
    return prepare(open_image(data, max_pixels), side)


def encode_png(image: Image.Image) -> bytes:
    """A lossless PNG of the model input (deterministic: the same pixels give the same bytes)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def content_hash(image: Image.Image) -> str:
    """The image's identity: SHA-256 (hex) of its raw pixels, after a header that says how to read them:
    `b"<mode> <width>x<height>\\n"` then `image.tobytes()` (for the model input, 32x32 RGB: 3,072 bytes, row by
    row, R G B per pixel, exactly what numpy's `asarray(image).tobytes()` holds).

    The pixels the model sees, not a file's bytes: the same picture arrives as different files (a phone JPEG and
    the 32x32 PNG serialize-image made of it, a re-encoded upload), and the pixels themselves, not an encoding of
    them: a PNG's bytes depend on the zlib and Pillow that wrote it, and the Lambda layer is built with other
    versions than a laptop. Training de-duplicates reviewed images by it, the review queue recognises an image
    already labelled by it (labels/<hash>.jsonl), the filter chooses audits by it (a retry or a second execution of
    the same image decides the same), and the report finds a captured image's true label by it.
    """
    header = f"{image.mode} {image.width}x{image.height}\n".encode()
    return hashlib.sha256(header + image.tobytes()).hexdigest()
