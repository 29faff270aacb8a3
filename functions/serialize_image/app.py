"""serialize-image: read an image from S3 and hand it to the workflow as a small base64 PNG.

A Step Functions state holds at most 256 KiB, so the image is normalised here to the model's input
(an RGB PNG of IMAGE_SIZE x IMAGE_SIZE pixels, about 3 KB for 32x32) before it enters the state. A
phone photo therefore works as well as a CIFAR image, and the state stays far below the limit.
Objects larger than MAX_IMAGE_BYTES, or with more than MAX_IMAGE_PIXELS pixels, are refused by name.
"""

from __future__ import annotations

import base64
import io
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SIZE = int(os.environ.get("IMAGE_SIZE", "32"))
MAX_IMAGE_BYTES = int(os.environ.get("MAX_IMAGE_BYTES", str(5 * 1024 * 1024)))
MAX_IMAGE_PIXELS = int(os.environ.get("MAX_IMAGE_PIXELS", str(40_000_000)))

s3 = boto3.client("s3")
logger = Logger()


class InvalidEventError(Exception):
    """The event does not name an S3 object (`s3_bucket` and `s3_key` are required)."""


class ImageNotFoundError(Exception):
    """The bucket or the key does not exist."""


class NotAnImageError(Exception):
    """The object's bytes are not an image Pillow can decode, whatever its name or content type says."""


class ImageTooLargeError(Exception):
    """The object is larger than MAX_IMAGE_BYTES or has more than MAX_IMAGE_PIXELS pixels."""


def parse_location(event: dict[str, Any]) -> tuple[str, str]:
    """Accept the starter's execution input, or the same fields under `body`."""
    source = event.get("body", event) if isinstance(event, dict) else None
    if not isinstance(source, dict):
        raise InvalidEventError(f"expected a JSON object with s3_bucket and s3_key, got {type(event).__name__}")
    bucket, key = source.get("s3_bucket"), source.get("s3_key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise InvalidEventError(f"s3_bucket and s3_key must be non-empty strings, got {bucket!r} and {key!r}")
    return bucket, key


def fetch_object(s3_client: Any, bucket: str, key: str, max_bytes: int) -> bytes:
    """Download the object, refusing it before reading the body when it is too large."""
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}:
            raise ImageNotFoundError(f"s3://{bucket}/{key} does not exist ({code})") from error
        raise
    size = response["ContentLength"]
    if size > max_bytes:
        response["Body"].close()
        raise ImageTooLargeError(f"s3://{bucket}/{key} is {size} bytes; the limit is {max_bytes} (MAX_IMAGE_BYTES)")
    data: bytes = response["Body"].read()
    return data


def normalise_image(data: bytes, size: int, max_pixels: int) -> bytes:
    """Decode any image Pillow reads, and re-encode it as a size x size RGB PNG.

    A 32x32 RGB input keeps its exact pixels (PNG is lossless), so CIFAR images reach the model
    unchanged. Larger inputs are EXIF-rotated, centre-cropped to a square and downscaled.
    """
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as error:
        raise NotAnImageError(f"the object's {len(data)} bytes are not a recognised image format") from error
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(f"image is {width}x{height} pixels; the limit is {max_pixels} (MAX_IMAGE_PIXELS)")
    image.draft("RGB", (size * 4, size * 4))  # JPEG only: decode at a reduced scale, much faster for photos
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise NotAnImageError(f"the {image.format} image could not be decoded: {error}") from error
    image = ImageOps.exif_transpose(image).convert("RGB")
    if image.size != (size, size):
        image = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket, key = parse_location(event)
    original = fetch_object(s3, bucket, key, MAX_IMAGE_BYTES)
    png = normalise_image(original, IMAGE_SIZE, MAX_IMAGE_PIXELS)
    logger.info("image serialized", extra={"s3_key": key, "original_bytes": len(original), "png_bytes": len(png)})
    return {
        "statusCode": 200,
        "body": {
            "image_data": base64.b64encode(png).decode("ascii"),
            "s3_bucket": bucket,
            "s3_key": key,
            "inferences": [],
        },
    }
