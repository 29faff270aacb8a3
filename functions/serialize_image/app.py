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
from urllib.parse import unquote_plus

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


NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def open_object(s3_client: Any, bucket: str, key: str) -> tuple[dict[str, Any], str]:
    """GetObject for `key` as given and, if there is no such key, for its URL-decoded form.

    S3 notifications to SQS, SNS and Lambda URL-encode keys ("red flower.jpg" arrives as
    "red+flower.jpg"); the EventBridge docs do not say, and AWS's Powertools decodes EventBridge keys
    with unquote_plus. The key as given is tried first, so an object whose name really contains "+"
    or "%" is found; the decoded key only when it differs. Returns (response, the key found).
    """
    candidates = list(dict.fromkeys([key, unquote_plus(key)]))
    code = ""
    for candidate in candidates:
        try:
            return s3_client.get_object(Bucket=bucket, Key=candidate), candidate
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                raise ImageNotFoundError(f"s3://{bucket}/{key} does not exist ({code})") from error
            if code not in NOT_FOUND_CODES:
                raise
    also = f", nor does its URL-decoded key {candidates[1]!r}" if len(candidates) > 1 else ""
    raise ImageNotFoundError(f"s3://{bucket}/{key} does not exist{also} ({code})")


def fetch_object(s3_client: Any, bucket: str, key: str, max_bytes: int) -> tuple[bytes, str]:
    """Download the object (see open_object for the key), refusing it before reading the body when it is too
    large. Returns (bytes, the key the object was found under)."""
    response, key = open_object(s3_client, bucket, key)
    size = response["ContentLength"]
    if size > max_bytes:
        response["Body"].close()
        raise ImageTooLargeError(f"s3://{bucket}/{key} is {size} bytes; the limit is {max_bytes} (MAX_IMAGE_BYTES)")
    data: bytes = response["Body"].read()
    return data, key


def normalise_image(data: bytes, size: int, max_pixels: int) -> bytes:
    """Any image Pillow reads, as the model's input: a size x size RGB PNG (see imaging.preprocess).

    Raises NotAnImageError and ImageTooLargeError, whose names the state machine sees.
    """
    return encode_png(to_model_input(data, side=size, max_pixels=max_pixels))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket, requested = parse_location(event)
    original, key = fetch_object(s3, bucket, requested, MAX_IMAGE_BYTES)
    png = normalise_image(original, IMAGE_SIZE, MAX_IMAGE_PIXELS)
    logger.info("image serialized", extra={"s3_key": key, "requested_key": requested, "original_bytes": len(original),
                                           "png_bytes": len(png)})
    return {
        "statusCode": 200,
        "body": {
            "image_data": base64.b64encode(png).decode("ascii"),
            "s3_bucket": bucket,
            "s3_key": key,
            "inferences": [],
        },
    }
