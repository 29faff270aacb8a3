"""One image preprocessing: the same photo gives the same model input on every road.

Roads: serialize-image (what the state machine sends), the endpoint on the original bytes (a caller
posting straight to it) and on serialize-image's PNG (the workflow), training's transform of a
photo folder, and monitoring's decoding of captured requests. Each crafted photo also has to look
as a person sees it: rotated by its EXIF tag, 16-bit grey not clipped to white, transparency on white.
"""

from __future__ import annotations

import base64
import io

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

from data_prep.dataset import transform
from data_prep.serving.predictor import Predictor
from functions.serialize_image import app as serialize
from imaging.preprocess import ImageTooLargeError, NotAnImageError, content_hash, to_model_input
from monitoring.baseline import decode_images

RED, BLUE, WHITE = (220, 20, 20), (20, 20, 220), (255, 255, 255)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def halves(width: int, height: int, left=RED, right=BLUE) -> Image.Image:
    """Left half one colour, right half another: orientation is visible in the result."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2], pixels[:, width // 2:] = left, right
    return Image.fromarray(pixels)


def exif_rotated_jpeg(width: int, height: int) -> bytes:
    """Stored turned a quarter to the left, with EXIF orientation 6 ("turn 90° clockwise to view"): a
    viewer shows red on the left and blue on the right."""
    upright = halves(width, height)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # undone by orientation 6 (rotate 270 = 90 cw)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(stored, "JPEG", quality=95, exif=exif.tobytes())


def grey16_png() -> bytes:
    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.float64), (64, 1)).astype(np.uint16)
    return encoded(Image.fromarray(ramp), "PNG")


def palette_with_transparency_png() -> bytes:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, *RED, *BLUE] + [0] * (256 * 3 - 9))
    image.paste(1, (0, 0, 20, 40))
    image.paste(2, (20, 0, 30, 40))  # columns 30..39 keep index 0: transparent
    return encoded(image, "PNG", transparency=0)


def cmyk_jpeg() -> bytes:
    return encoded(halves(48, 48).convert("CMYK"), "JPEG", quality=95)


def rgba_png() -> bytes:
    pixels = np.zeros((32, 32, 4), np.uint8)
    pixels[..., :3] = BLUE
    pixels[:, :16, 3] = 255  # left half opaque blue, right half fully transparent
    return encoded(Image.fromarray(pixels), "PNG")


PHOTOS = {
    "exif_rotated_jpeg": exif_rotated_jpeg(96, 64),
    "exif_rotated_32x32_jpeg": exif_rotated_jpeg(32, 32),
    "non_square_jpeg": encoded(halves(120, 60), "JPEG", quality=95),
    "grey16_png": grey16_png(),
    "palette_transparency_png": palette_with_transparency_png(),
    "cmyk_jpeg": cmyk_jpeg(),
    "rgba_png": rgba_png(),
}


def through_serialize_image(data: bytes, context) -> bytes:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="roads")
        s3.put_object(Bucket="roads", Key="photo", Body=data)
        body = serialize.lambda_handler({"s3_bucket": "roads", "s3_key": "photo"}, context)["body"]  # moto serves it
    return base64.b64decode(body["image_data"])


def through_training(data: bytes, tmp_path) -> np.ndarray:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "photo.bin").write_bytes(data)
    for example in transform.folder_examples(tmp_path, None, 0.0):
        (tmp_path / "a" / "photo.bin").unlink(missing_ok=True)
        return example.pixels
    raise AssertionError("no example")


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_every_road_gives_the_same_model_input(name, tmp_path, monkeypatch, lambda_context):
    data = PHOTOS[name]
    monkeypatch.setattr(transform, "IMAGE_SUFFIXES", {".bin"})
    expected = np.asarray(to_model_input(data))
    assert expected.shape == (32, 32, 3) and expected.dtype == np.uint8

    png = through_serialize_image(data, lambda_context)
    roads = {
        "serialize-image": np.asarray(Image.open(io.BytesIO(png))),
        "endpoint, original bytes": Predictor.decode(data, "image/jpeg")[0],
        "endpoint, serialize-image's PNG": Predictor.decode(png, "image/png")[0],
        "training transform": through_training(data, tmp_path),
        "monitoring": decode_images([data])[0],
    }
    for road, pixels in roads.items():
        np.testing.assert_array_equal(pixels, expected, err_msg=road)
    assert content_hash(to_model_input(data)) == content_hash(to_model_input(png))  # a captured request finds its
    # label either way


def column_colour(pixels: np.ndarray, column: int) -> np.ndarray:
    return pixels[:, column].mean(axis=0)


@pytest.mark.parametrize("name", ["exif_rotated_jpeg", "exif_rotated_32x32_jpeg"])
def test_exif_orientation_is_applied_even_at_model_size(name):
    pixels = np.asarray(to_model_input(PHOTOS[name])).astype(int)
    np.testing.assert_allclose(column_colour(pixels, 2), RED, atol=25)
    np.testing.assert_allclose(column_colour(pixels, 29), BLUE, atol=25)


def test_16_bit_grey_keeps_its_ramp_instead_of_turning_white():
    pixels = np.asarray(to_model_input(PHOTOS["grey16_png"])).astype(int)
    row = pixels[16, :, 0]
    assert row[0] < 10 and row[-1] > 245 and 100 < row[16] < 160  # a ramp, not a blank image
    assert np.all(np.diff(row) >= 0)


def test_transparency_is_shown_on_white():
    palette = np.asarray(to_model_input(PHOTOS["palette_transparency_png"])).astype(int)
    assert tuple(palette[20, 31]) == WHITE and tuple(palette[20, 2]) == RED
    rgba = np.asarray(to_model_input(PHOTOS["rgba_png"])).astype(int)
    assert tuple(rgba[5, 3]) == BLUE and tuple(rgba[5, 28]) == WHITE


def test_cmyk_comes_out_in_its_colours():
    pixels = np.asarray(to_model_input(PHOTOS["cmyk_jpeg"])).astype(int)
    np.testing.assert_allclose(column_colour(pixels, 3), RED, atol=30)
    np.testing.assert_allclose(column_colour(pixels, 28), BLUE, atol=30)


def test_a_decompression_bomb_is_refused_before_its_pixels_are_allocated():
    bomb = encoded(Image.new("1", (20_000, 20_000)), "PNG")  # 400 MP in a few KB
    assert len(bomb) < 100_000
    with pytest.raises(ImageTooLargeError, match="the limit is 40000000"):
        to_model_input(bomb)
    with pytest.raises(ImageTooLargeError, match="image is 9000x9000 pixels; the limit is 40000000"):
        to_model_input(encoded(Image.new("1", (9000, 9000)), "PNG"))  # under Pillow's own guard, over ours


def test_bytes_that_are_not_an_image_are_named():
    with pytest.raises(NotAnImageError, match="11 bytes are not a recognised image format"):
        to_model_input(b"not a photo")
