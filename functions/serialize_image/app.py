"""serialize-image: read an image from S3 and hand it to the workflow as a small base64 PNG.

A Step Functions state holds at most 256 KiB, so the image is normalised here to the model's input
(an RGB PNG of IMAGE_SIZE x IMAGE_SIZE pixels, about 3 KB for 32x32) before it enters the state. A
phone photo therefore works as well as a CIFAR image, and the state stays far below the limit.
Objects larger than MAX_IMAGE_BYTES, or with more than MAX_IMAGE_PIXELS pixels, are refused by name.

The normalisation is the project's one image preprocessing (`imaging.preprocess`, shipped to this
function by the ImagingLayer): training, the endpoint and monitoring prepare images with the same code.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from imaging.preprocess import ImageTooLargeError, NotAnImageError, encode_png, to_model_input

IMAGE_SIZE = int(os.environ["IMAGE_SIZE"])
MAX_IMAGE_BYTES = int(os.environ["MAX_IMAGE_BYTES"])
MAX_IMAGE_PIXELS = int(os.environ["MAX_IMAGE_PIXELS"])

s3 = boto3.client("s3")
logger = Logger()


class InvalidEventError(Exception):
    """The event does not name an S3 object (`s3_bucket` and `s3_key` are required)."""


class ImageNotFoundError(Exception):
    """The bucket or the key does not exist."""


__all__ = ["ImageNotFoundError", "ImageTooLargeError", "InvalidEventError", "NotAnImageError", "lambda_handler"]


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
    """Any image Pillow reads, as the model's input: a size x size RGB PNG (see imaging.preprocess).

    Raises NotAnImageError and ImageTooLargeError, whose names the state machine sees.
    """
    return encode_png(to_model_input(data, side=size, max_pixels=max_pixels))


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
