"""serialize-image: take an image (an S3 object, or the image itself) and hand it to the workflow as a small base64 PNG.

A Step Functions state holds at most 256 KiB, so the image is normalised here to the model's input
(an RGB PNG of IMAGE_SIZE x IMAGE_SIZE pixels, about 3 KB for 32x32) before it enters the state. A
phone photo therefore works as well as a CIFAR image, and the state stays far below the limit.
Objects larger than MAX_IMAGE_BYTES, or with more than MAX_IMAGE_PIXELS pixels, are refused by name.

Two inputs, one normalisation: the starter's `{"image_data": "", "s3_bucket", "s3_key"}`, or the
image itself as base64 in `image_data` with no `s3_key` (the API's uploads). An uploaded image is
staged unchanged at s3://UPLOAD_BUCKET/UPLOAD_PREFIX<sha256>.<format> before the workflow goes on, so
every classification, review record and event points at an S3 object, whichever door it came through
(the key is the content's hash: a retried or repeated upload is the same object).

The body also carries `content_sha256`, the image's content hash (imaging.preprocess.content_hash: the SHA-256
of the model input's raw pixels it sends on): the filter chooses audits by it and the review queue recognises an
image already labelled by it, whatever key or execution brought the image.

The normalisation is the project's one image preprocessing (`imaging.preprocess`, shipped to this
function by the ImagingLayer): training, the endpoint and monitoring prepare images with the same code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from imaging.preprocess import (
    MODEL_SIDE,
    ImageTooLargeError,
    NotAnImageError,
    content_hash,
    encode_png,
    open_image,
    to_model_input,
)

IMAGE_SIZE = MODEL_SIDE  # the model's input size has one home, the one preprocessing (the ImagingLayer ships it)
MAX_IMAGE_BYTES = int(os.environ["MAX_IMAGE_BYTES"])
MAX_IMAGE_PIXELS = int(os.environ["MAX_IMAGE_PIXELS"])
UPLOAD_BUCKET = os.environ.get("UPLOAD_BUCKET", "")
UPLOAD_PREFIX = os.environ.get("UPLOAD_PREFIX", "uploads/")

s3 = boto3.client("s3")
logger = Logger()


class InvalidEventError(Exception):
    """The event names neither an S3 object (`s3_bucket` and `s3_key`) nor carries an image (base64 `image_data`)."""


class ImageNotFoundError(Exception):
    """The bucket or the key does not exist."""


class ImageNotServedError(Exception):
    """S3 refused the read (AccessDenied): the key is outside the prefixes this function may read (incoming/,
    uploads/, the batch prefix, the staged test images: its IAM policy), or the bucket is not the data bucket."""


class ConfigurationError(Exception):
    """UPLOAD_BUCKET is not set, so an uploaded image cannot be staged."""


__all__ = ["ConfigurationError", "ImageNotFoundError", "ImageNotServedError", "ImageTooLargeError", "InvalidEventError",
           "NotAnImageError", "lambda_handler"]


def event_fields(event: Any) -> dict[str, Any]:
    """The starter's execution input, or the same fields under `body`."""
    source = event.get("body", event) if isinstance(event, dict) else None
    if not isinstance(source, dict):
        raise InvalidEventError(f"expected a JSON object with s3_bucket and s3_key, or image_data, got "
                                f"{type(event).__name__}")
    return source


def parse_location(event: dict[str, Any]) -> tuple[str, str]:
    """The S3 object the event names (`s3_bucket`, `s3_key`)."""
    source = event_fields(event)
    bucket, key = source.get("s3_bucket"), source.get("s3_key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise InvalidEventError(f"s3_bucket and s3_key must be non-empty strings, got {bucket!r} and {key!r}")
    return bucket, key


def uploaded_image(event: dict[str, Any], max_bytes: int) -> bytes | None:
    """The image carried in the event (base64 `image_data` with no `s3_key`), or None when it names an S3 object."""
    source = event_fields(event)
    encoded = source.get("image_data")
    if encoded in (None, ""):
        return None
    if source.get("s3_key"):
        raise InvalidEventError("give the image (image_data) or its S3 location (s3_bucket, s3_key), not both")
    if not isinstance(encoded, str):
        raise InvalidEventError(f"image_data must be a base64 string, got {type(encoded).__name__}")
    if len(encoded) > (max_bytes + 2) // 3 * 4:  # refused before decoding
        raise ImageTooLargeError(f"the uploaded image is over {max_bytes} bytes (MAX_IMAGE_BYTES)")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidEventError(f"image_data is not valid base64: {error}") from error
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"the uploaded image is {len(data)} bytes, over {max_bytes} (MAX_IMAGE_BYTES)")
    return data


def stage_upload(s3_client: Any, bucket: str, prefix: str, data: bytes, max_pixels: int) -> str:
    """Store the uploaded image unchanged under its content hash; return its key."""
    if not bucket:
        raise ConfigurationError("UPLOAD_BUCKET is not set: an uploaded image cannot be staged")
    image_format = (open_image(data, max_pixels).format or "image").lower()
    key = f"{prefix}{hashlib.sha256(data).hexdigest()}.{'jpg' if image_format == 'jpeg' else image_format}"
    s3_client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=f"image/{image_format}")
    return key


NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
FORBIDDEN_CODES = frozenset({"AccessDenied", "403", "Forbidden"})


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
            if code in FORBIDDEN_CODES:
                raise ImageNotServedError(f"s3://{bucket}/{key} may not be read ({code}): serialize-image reads only "
                                          "incoming/, uploads/, the stack's BatchPrefix and DatasetPrefix/test/ of "
                                          "the data bucket") from error
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
    return normalise(data, size, max_pixels)[0]


def normalise(data: bytes, size: int, max_pixels: int) -> tuple[bytes, str]:
    """normalise_image's PNG, and the content hash of the pixels it holds."""
    image = to_model_input(data, side=size, max_pixels=max_pixels)
    return encode_png(image), content_hash(image)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    upload = uploaded_image(event, MAX_IMAGE_BYTES)
    if upload is None:
        bucket, requested = parse_location(event)
        original, key = fetch_object(s3, bucket, requested, MAX_IMAGE_BYTES)
        png, digest = normalise(original, IMAGE_SIZE, MAX_IMAGE_PIXELS)
    else:
        original = upload
        png, digest = normalise(original, IMAGE_SIZE, MAX_IMAGE_PIXELS)  # refused before anything is stored
        bucket, key = UPLOAD_BUCKET, stage_upload(s3, UPLOAD_BUCKET, UPLOAD_PREFIX, original, MAX_IMAGE_PIXELS)
        requested = key
    logger.info("image serialized", extra={"s3_key": key, "requested_key": requested, "uploaded": upload is not None,
                                           "original_bytes": len(original), "png_bytes": len(png)})
    return {
        "statusCode": 200,
        "body": {
            "image_data": base64.b64encode(png).decode("ascii"),
            "s3_bucket": bucket,
            "s3_key": key,
            "content_sha256": digest,  # the image's identity: audits and review labels go by it
            "inferences": [],
        },
    }
