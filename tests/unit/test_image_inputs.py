"""Every image mode Pillow opens reaches the model as a person sees it, and bombs are refused by name.

The picture: left half red, right half blue (grey modes: the two greys of those colours; modes with
alpha: the right half transparent, so it must come out white). Each case is saved in a format that
stores that mode, and the test checks the mode Pillow opens it as, so every listed mode is really
exercised. `to_model_input` is the one preprocessing of every road (test_preprocessing_roads.py shows
the roads agree), so checking it checks serialize-image, the endpoint, training and monitoring.
"""

from __future__ import annotations

import io
import struct

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

from functions.serialize_image import app as serialize
from imaging.preprocess import to_model_input, to_rgb
from testkit.images import bomb_png

RED, BLUE, WHITE, BLACK = (220, 20, 20), (20, 20, 220), (255, 255, 255), (0, 0, 0)
SIDE = 48


def grey(colour: tuple[int, int, int]) -> int:
    return int(Image.new("RGB", (1, 1), colour).convert("L").getpixel((0, 0)))  # ITU-R 601-2 luma, as Pillow


RED_GREY, BLUE_GREY = (grey(RED),) * 3, (grey(BLUE),) * 3


def saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def picture(mode: str = "RGB") -> Image.Image:
    pixels = np.zeros((SIDE, SIDE, 3), np.uint8)
    pixels[:, : SIDE // 2], pixels[:, SIDE // 2:] = RED, BLUE
    return Image.fromarray(pixels).convert(mode)


def with_transparent_right(image: Image.Image) -> Image.Image:
    alpha = Image.new("L", image.size, 255)
    alpha.paste(0, (SIDE // 2, 0, SIDE, SIDE))
    image = image.copy()
    image.putalpha(alpha)
    return image


def bilevel() -> Image.Image:
    image = Image.new("1", (SIDE, SIDE), 0)
    image.paste(1, (0, 0, SIDE // 2, SIDE))  # left white, right black
    return image


def wide_grey(mode: str, left: float, right: float, dtype: str) -> Image.Image:
    values = np.empty((SIDE, SIDE), dtype)
    values[:, : SIDE // 2], values[:, SIDE // 2:] = left, right
    return Image.frombytes(mode, (SIDE, SIDE), values.tobytes())


def palette(transparent_right: bool = False) -> Image.Image:
    image = Image.new("P", (SIDE, SIDE), 1)
    image.putpalette([*RED, *BLUE, 0, 0, 0] + [0] * (256 * 3 - 9))
    image.paste(1 if not transparent_right else 2, (SIDE // 2, 0, SIDE, SIDE))
    image.paste(0, (0, 0, SIDE // 2, SIDE))
    return image


def premultiplied_tiff(image: Image.Image) -> bytes:
    """A TIFF whose alpha is marked associated (ExtraSamples = 1): Pillow opens it as La or RGBa's data."""
    data = bytearray(saved(image, "TIFF"))
    entry = b"\x52\x01\x03\x00\x01\x00\x00\x00\x02\x00"  # tag 338 ExtraSamples, SHORT, 1 value: 2 (unassociated)
    assert data.count(entry) == 1
    data[data.find(entry) + 8] = 1
    return bytes(data)


def premultiplied(image: Image.Image) -> Image.Image:
    bands = [np.asarray(band, np.float64) for band in image.split()]
    alpha = bands[-1] / 255
    return Image.merge(image.mode, [Image.fromarray(np.round(band * alpha).astype(np.uint8)) for band in bands[:-1]]
                       + [image.split()[-1]])


def animated_gif() -> bytes:
    first, second = palette(), Image.new("P", (SIDE, SIDE), 2)
    second.putpalette([*RED, *BLUE, 0, 0, 0] + [0] * (256 * 3 - 9))
    return saved(first, "GIF", save_all=True, append_images=[second])


# (case, bytes, the mode Pillow opens it as, colour seen on the left, on the right, tolerance)
CASES = [
    ("1 PNG", saved(bilevel(), "PNG"), "1", WHITE, BLACK, 0),
    ("1 TIFF", saved(bilevel(), "TIFF"), "1", WHITE, BLACK, 0),
    ("1 BMP", saved(bilevel(), "BMP"), "1", WHITE, BLACK, 0),
    ("L PNG", saved(picture("L"), "PNG"), "L", RED_GREY, BLUE_GREY, 0),
    ("L JPEG", saved(picture("L"), "JPEG", quality=95), "L", RED_GREY, BLUE_GREY, 3),
    ("L TIFF", saved(picture("L"), "TIFF"), "L", RED_GREY, BLUE_GREY, 0),
    ("L PGM", saved(picture("L"), "PPM"), "L", RED_GREY, BLUE_GREY, 0),
    ("LA PNG", saved(with_transparent_right(picture("L")), "PNG"), "LA", RED_GREY, WHITE, 0),
    ("LA TIFF", saved(with_transparent_right(picture("L")), "TIFF"), "LA", RED_GREY, WHITE, 0),
    ("La TIFF (associated alpha)", premultiplied_tiff(premultiplied(with_transparent_right(picture("L")))), "La",
     RED_GREY, WHITE, 1),
    ("P PNG", saved(palette(), "PNG"), "P", RED, BLUE, 0),
    ("P GIF", saved(palette(), "GIF"), "P", RED, BLUE, 0),
    ("P BMP", saved(palette(), "BMP"), "P", RED, BLUE, 0),
    ("P TIFF", saved(palette(), "TIFF"), "P", RED, BLUE, 0),
    ("P PNG transparency", saved(palette(True), "PNG", transparency=2), "P", RED, WHITE, 0),
    ("P GIF transparency", saved(palette(True), "GIF", transparency=2), "P", RED, WHITE, 0),
    ("P GIF animated: first frame", animated_gif(), "P", RED, BLUE, 0),
    ("PA TIFF", saved(with_transparent_right(palette().convert("PA")), "TIFF"), "PA", RED, WHITE, 0),
    ("I TIFF 8-bit values", saved(wide_grey("I", 80, 43, "<i4"), "TIFF"), "I", RED_GREY, BLUE_GREY, 0),
    ("I TIFF 16-bit values", saved(wide_grey("I", 80 * 257, 43 * 257, "<i4"), "TIFF"), "I", RED_GREY, BLUE_GREY, 1),
    ("I TIFF wide values", saved(wide_grey("I", 100_000, 300_000, "<i4"), "TIFF"), "I", BLACK, WHITE, 0),
    ("I TIFF negative values", saved(wide_grey("I", -300, -100, "<i4"), "TIFF"), "I", BLACK, WHITE, 0),
    ("I;16 PNG", saved(wide_grey("I;16", 80 * 257, 43 * 257, "<u2"), "PNG"), "I;16", RED_GREY, BLUE_GREY, 1),
    ("I;16 TIFF", saved(wide_grey("I;16", 80 * 257, 43 * 257, "<u2"), "TIFF"), "I;16", RED_GREY, BLUE_GREY, 1),
    ("I;16B TIFF", saved(wide_grey("I;16B", 80 * 257, 43 * 257, ">u2"), "TIFF"), "I;16B", RED_GREY, BLUE_GREY, 1),
    ("F TIFF [0, 1]", saved(wide_grey("F", 80 / 255, 43 / 255, "<f4"), "TIFF"), "F", RED_GREY, BLUE_GREY, 1),
    ("F TIFF [0, 255]", saved(wide_grey("F", 80, 43, "<f4"), "TIFF"), "F", RED_GREY, BLUE_GREY, 1),
    ("F TIFF 16-bit range", saved(wide_grey("F", 80 * 257, 43 * 257, "<f4"), "TIFF"), "F", RED_GREY, BLUE_GREY, 1),
    ("RGB PNG", saved(picture(), "PNG"), "RGB", RED, BLUE, 0),
    ("RGB JPEG", saved(picture(), "JPEG", quality=95), "RGB", RED, BLUE, 4),
    ("RGB WebP", saved(picture(), "WEBP", quality=95), "RGB", RED, BLUE, 6),
    ("RGB BMP", saved(picture(), "BMP"), "RGB", RED, BLUE, 0),
    ("RGB TIFF", saved(picture(), "TIFF"), "RGB", RED, BLUE, 0),
    ("RGB GIF", saved(picture(), "GIF"), "P", RED, BLUE, 0),
    ("RGBA PNG", saved(with_transparent_right(picture()), "PNG"), "RGBA", RED, WHITE, 0),
    ("RGBA TIFF", saved(with_transparent_right(picture()), "TIFF"), "RGBA", RED, WHITE, 0),
    ("RGBA WebP", saved(with_transparent_right(picture()), "WEBP", lossless=True), "RGBA", RED, WHITE, 0),
    ("RGBA TGA", saved(with_transparent_right(picture()), "TGA"), "RGBA", RED, WHITE, 0),
    ("RGBa TIFF (associated alpha)", premultiplied_tiff(premultiplied(with_transparent_right(picture()))), "RGBA",
     RED, WHITE, 1),
    ("CMYK JPEG", saved(picture("CMYK"), "JPEG", quality=95), "CMYK", RED, BLUE, 4),
    ("CMYK TIFF", saved(picture("CMYK"), "TIFF"), "CMYK", RED, BLUE, 0),
    ("YCbCr TIFF", saved(picture("YCbCr"), "TIFF"), "YCbCr", RED, BLUE, 3),
    ("LAB TIFF", saved(picture("LAB"), "TIFF"), "LAB", RED, BLUE, 8),
]


def column(pixels: np.ndarray, x: int) -> np.ndarray:
    return pixels[4:-4, x].astype(float).mean(axis=0)


@pytest.mark.parametrize("case,data,opened_mode,left,right,tolerance", CASES, ids=[case[0] for case in CASES])
def test_every_mode_reaches_the_model_as_a_person_sees_it(case, data, opened_mode, left, right, tolerance):
    assert Image.open(io.BytesIO(data)).mode == opened_mode
    pixels = np.asarray(to_model_input(data))
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    np.testing.assert_allclose(column(pixels, 3), left, atol=tolerance, err_msg=f"{case}: left half")
    np.testing.assert_allclose(column(pixels, 28), right, atol=tolerance, err_msg=f"{case}: right half")


def in_memory(mode: str) -> Image.Image:
    if mode in {"La", "RGBa"}:
        return with_transparent_right(picture("L" if mode == "La" else "RGB")).convert(mode)
    if mode in {"I;16", "I;16L", "I;16N", "I;16B"}:
        return wide_grey(mode, 80 * 257, 43 * 257, ">u2" if mode == "I;16B" else "<u2")
    if mode == "F":
        return wide_grey("F", 80, 43, "<f4")
    if mode == "P":
        return palette()
    if mode == "PA":
        return with_transparent_right(palette().convert("PA"))
    if mode in {"LA", "RGBA"}:
        return with_transparent_right(picture("L" if mode == "LA" else "RGB"))
    if mode == "1":
        return bilevel()
    return picture(mode)


@pytest.mark.parametrize("mode", Image.MODES)
def test_to_rgb_handles_every_mode_pillow_has(mode):
    """Modes no file opens as (HSV, RGBX, I;16N...) too: whatever a caller hands over comes out as seen."""
    image = in_memory(mode)
    assert image.mode == mode
    pixels = np.asarray(to_rgb(image))
    expected = {"1": (WHITE, BLACK), "L": (RED_GREY, BLUE_GREY), "LA": (RED_GREY, WHITE), "La": (RED_GREY, WHITE),
                "I": (RED_GREY, BLUE_GREY), "F": (RED_GREY, BLUE_GREY), "PA": (RED, WHITE),
                "RGBA": (RED, WHITE), "RGBa": (RED, WHITE)}
    left, right = expected.get(mode, expected["L"] if mode.startswith("I;16") else (RED, BLUE))
    np.testing.assert_allclose(column(pixels, 5), left, atol=8)
    np.testing.assert_allclose(column(pixels, SIDE - 5), right, atol=8)


def test_a_bomb_in_the_bucket_is_image_too_large_in_serialize_image(lambda_context):
    bomb = bomb_png()  # 400 megapixels in 50 KB
    assert len(bomb) < 100_000 and struct.unpack(">II", bomb[16:24]) == (20_000, 20_000)  # IHDR's claim
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bombs")
        s3.put_object(Bucket="bombs", Key="incoming/bomb.png", Body=bomb)
        with pytest.raises(serialize.ImageTooLargeError, match="the limit is 40000000") as raised:
            serialize.lambda_handler({"s3_bucket": "bombs", "s3_key": "incoming/bomb.png"}, lambda_context)
    assert type(raised.value).__name__ == "ImageTooLargeError"  # the name the state machine sees
