"""serialize-image finds the object whether its key arrives raw or URL-encoded (as S3 notifications send it)."""

from __future__ import annotations

from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from functions.serialize_image import app
from testkit.images import png_bytes

BUCKET = "scones-offline"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def serialize(key: str, lambda_context) -> dict:
    return app.lambda_handler({"image_data": "", "s3_bucket": BUCKET, "s3_key": key}, lambda_context)["body"]


@pytest.mark.parametrize("stored", ["incoming/red flower.jpg", "incoming/a+b.png", "incoming/50%.png",
                                    "incoming/vélo 🚲.png", 'incoming/say "cheese" \\ now.png'])
def test_a_raw_key_is_found_as_given(s3, lambda_context, stored):
    s3.put_object(Bucket=BUCKET, Key=stored, Body=png_bytes())
    assert serialize(stored, lambda_context)["s3_key"] == stored


@pytest.mark.parametrize("stored", ["incoming/red flower.jpg", "incoming/a+b.png", "incoming/50%.png",
                                    "incoming/vélo 🚲.png", 'incoming/say "cheese" \\ now.png'])
def test_an_url_encoded_key_finds_the_object_under_its_decoded_name(s3, lambda_context, stored):
    s3.put_object(Bucket=BUCKET, Key=stored, Body=png_bytes(seed=3))
    encoded = quote_plus(stored, safe="/")  # as S3 writes keys in notifications: "red flower.jpg" -> "red+flower.jpg"
    assert encoded != stored
    body = serialize(encoded, lambda_context)
    assert body["s3_key"] == stored
    assert body["image_data"]


def test_the_raw_key_wins_when_both_names_exist(s3, lambda_context):
    s3.put_object(Bucket=BUCKET, Key="incoming/a+b.png", Body=png_bytes(seed=1))
    s3.put_object(Bucket=BUCKET, Key="incoming/a b.png", Body=png_bytes(seed=2))
    assert serialize("incoming/a+b.png", lambda_context)["s3_key"] == "incoming/a+b.png"


def test_a_key_missing_under_both_names_says_so(s3, lambda_context):
    with pytest.raises(app.ImageNotFoundError, match=r"s3://scones-offline/incoming/red\+flower.jpg does not exist, "
                                                     r"nor does its URL-decoded key 'incoming/red flower.jpg' "
                                                     r"\(NoSuchKey\)"):
        serialize("incoming/red+flower.jpg", lambda_context)


def test_a_missing_bucket_is_not_retried_under_a_decoded_key(s3, lambda_context):
    with pytest.raises(app.ImageNotFoundError, match=r"^s3://no-such-bucket/a\+b.png does not exist \(NoSuchBucket\)$"):
        app.lambda_handler({"s3_bucket": "no-such-bucket", "s3_key": "a+b.png"}, lambda_context)
