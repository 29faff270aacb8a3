from __future__ import annotations

import base64
import io
from urllib.parse import quote_plus

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

from functions.serialize_image import app
from testkit.images import png_bytes
from tests.support import load_event

BUCKET = "scones-offline"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def decode(body: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(body["image_data"])))


def test_sample_event_returns_the_starter_body_with_the_exact_pixels(s3, lambda_context):
    event = load_event("serialize_image.json")
    original = png_bytes(seed=1)
    s3.put_object(Bucket=event["s3_bucket"], Key=event["s3_key"], Body=original)

    result = app.lambda_handler(event, lambda_context)

    assert result["statusCode"] == 200
    body = result["body"]
    assert set(body) == {"image_data", "s3_bucket", "s3_key", "content_sha256", "inferences"}
    assert (body["s3_bucket"], body["s3_key"], body["inferences"]) == (BUCKET, "test/bicycle_s_000513.png", [])
    assert decode(body).tobytes() == Image.open(io.BytesIO(original)).tobytes()


def test_the_body_carries_the_images_content_hash_the_training_de_duplication_uses(s3, lambda_context):
    """The same picture as a JPEG upload and as a PNG object: one content hash (the model input's pixels)."""
    from data_prep.training.reviewed import content_hash
    from imaging.preprocess import to_model_input

    original = png_bytes(seed=3)
    s3.put_object(Bucket=BUCKET, Key="test/a.png", Body=original)
    s3.put_object(Bucket=BUCKET, Key="test/copy.png", Body=original)

    hashes = [app.lambda_handler({"s3_bucket": BUCKET, "s3_key": key}, lambda_context)["body"]["content_sha256"]
              for key in ("test/a.png", "test/copy.png")]

    pixels = np.asarray(to_model_input(original), dtype=np.uint8)
    assert hashes == [content_hash(pixels)] * 2


def test_execution_input_event_is_accepted_by_the_first_state(s3, lambda_context):
    event = load_event("execution_input.json")
    s3.put_object(Bucket=event["s3_bucket"], Key=event["s3_key"], Body=png_bytes())
    assert app.lambda_handler(event, lambda_context)["body"]["s3_key"] == event["s3_key"]


def test_large_photo_is_normalised_to_a_32x32_rgb_png(s3, lambda_context):
    s3.put_object(Bucket=BUCKET, Key="incoming/photo.png", Body=png_bytes(1200, 800, seed=2, mode="RGBA"))

    body = app.lambda_handler({"s3_bucket": BUCKET, "s3_key": "incoming/photo.png"}, lambda_context)["body"]

    image = decode(body)
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (32, 32))
    assert len(body["image_data"]) < 8 * 1024


def test_jpeg_with_a_png_name_is_read_by_its_bytes(s3, lambda_context):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, format="JPEG")
    s3.put_object(Bucket=BUCKET, Key="test/looks_like.png", Body=buffer.getvalue())

    image = decode(app.lambda_handler({"s3_bucket": BUCKET, "s3_key": "test/looks_like.png"}, lambda_context)["body"])

    assert image.size == (32, 32)


def test_missing_key_raises_image_not_found(s3, lambda_context):
    with pytest.raises(app.ImageNotFoundError, match="s3://scones-offline/test/nope.png does not exist"):
        app.lambda_handler({"s3_bucket": BUCKET, "s3_key": "test/nope.png"}, lambda_context)


def test_missing_bucket_raises_image_not_found(s3, lambda_context):
    with pytest.raises(app.ImageNotFoundError, match="NoSuchBucket"):
        app.lambda_handler({"s3_bucket": "no-such-bucket", "s3_key": "a.png"}, lambda_context)


def test_text_with_an_image_extension_is_not_an_image(s3, lambda_context):
    s3.put_object(Bucket=BUCKET, Key="test/fake.png", Body=b"definitely not a png")
    with pytest.raises(app.NotAnImageError, match="20 bytes are not a recognised image format"):
        app.lambda_handler({"s3_bucket": BUCKET, "s3_key": "test/fake.png"}, lambda_context)


def test_truncated_png_is_not_an_image(s3, lambda_context):
    s3.put_object(Bucket=BUCKET, Key="test/cut.png", Body=png_bytes(64, 64)[:200])
    with pytest.raises(app.NotAnImageError, match="could not be decoded"):
        app.lambda_handler({"s3_bucket": BUCKET, "s3_key": "test/cut.png"}, lambda_context)


def test_object_over_the_byte_limit_is_refused_before_download(s3):
    s3.put_object(Bucket=BUCKET, Key="big.png", Body=b"x" * 101)
    with pytest.raises(app.ImageTooLargeError, match="is 101 bytes; the limit is 100"):
        app.fetch_object(s3, BUCKET, "big.png", max_bytes=100)


def test_image_over_the_pixel_limit_is_refused():
    with pytest.raises(app.ImageTooLargeError, match="image is 64x64 pixels; the limit is 4000"):
        app.normalise_image(png_bytes(64, 64), size=32, max_pixels=4000)


@pytest.mark.parametrize("event", [{}, {"s3_bucket": "b"}, {"s3_bucket": "", "s3_key": "k"}, {"body": "text"}, []])
def test_event_without_a_location_is_invalid(event, lambda_context):
    with pytest.raises(app.InvalidEventError):
        app.lambda_handler(event, lambda_context)


@pytest.fixture
def uploads(s3, monkeypatch):
    monkeypatch.setattr(app, "UPLOAD_BUCKET", BUCKET)
    return s3


def upload_event(data: bytes) -> dict:
    return {"image_data": base64.b64encode(data).decode("ascii")}


def test_an_uploaded_image_is_staged_under_its_hash_and_normalised_like_an_s3_one(uploads, lambda_context):
    import hashlib

    original = png_bytes(300, 200, seed=5)
    uploads.put_object(Bucket=BUCKET, Key="test/same.png", Body=original)

    body = app.lambda_handler(upload_event(original), lambda_context)["body"]

    key = f"uploads/{hashlib.sha256(original).hexdigest()}.png"
    assert (body["s3_bucket"], body["s3_key"], body["inferences"]) == (BUCKET, key, [])
    staged = uploads.get_object(Bucket=BUCKET, Key=key)
    assert (staged["Body"].read(), staged["ContentType"]) == (original, "image/png")
    from_s3 = app.lambda_handler({"s3_bucket": BUCKET, "s3_key": "test/same.png"}, lambda_context)["body"]
    assert body["image_data"] == from_s3["image_data"]  # one normalisation for both doors


def test_an_uploaded_jpeg_keeps_its_format_in_the_staged_key(uploads, lambda_context):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, format="JPEG")
    key = app.lambda_handler(upload_event(buffer.getvalue()), lambda_context)["body"]["s3_key"]
    assert key.startswith("uploads/") and key.endswith(".jpg")
    assert uploads.head_object(Bucket=BUCKET, Key=key)["ContentType"] == "image/jpeg"


def test_an_upload_that_is_not_an_image_is_refused_and_nothing_is_staged(uploads, lambda_context):
    with pytest.raises(app.NotAnImageError):
        app.lambda_handler(upload_event(b"plain text"), lambda_context)
    assert uploads.list_objects_v2(Bucket=BUCKET, Prefix="uploads/")["KeyCount"] == 0


@pytest.mark.parametrize("event,error,message", [
    ({"image_data": "not base64!"}, app.InvalidEventError, "image_data is not valid base64"),
    ({"image_data": "aGk=", "s3_bucket": BUCKET, "s3_key": "k.png"}, app.InvalidEventError, "not both"),
    ({"image_data": 42}, app.InvalidEventError, "must be a base64 string"),
])
def test_bad_uploads_are_invalid_events(uploads, lambda_context, event, error, message):
    with pytest.raises(error, match=message):
        app.lambda_handler(event, lambda_context)


def test_an_upload_over_the_byte_limit_is_refused_before_decoding(monkeypatch):
    with pytest.raises(app.ImageTooLargeError, match="over 100 bytes"):
        app.uploaded_image({"image_data": base64.b64encode(b"x" * 103).decode()}, max_bytes=100)
    with pytest.raises(app.ImageTooLargeError, match="is 101 bytes, over 100"):
        app.uploaded_image({"image_data": base64.b64encode(b"x" * 101).decode()}, max_bytes=100)
    assert app.uploaded_image({"image_data": base64.b64encode(b"x" * 100).decode()}, max_bytes=100) == b"x" * 100


def test_staging_without_an_upload_bucket_is_a_configuration_error(s3, monkeypatch, lambda_context):
    monkeypatch.setattr(app, "UPLOAD_BUCKET", "")
    with pytest.raises(app.ConfigurationError, match="UPLOAD_BUCKET"):
        app.lambda_handler(upload_event(png_bytes()), lambda_context)


# Keys raw or URL-encoded (as S3 notifications send them): the object is found either way.

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


def test_a_read_its_policy_refuses_is_named_and_not_retried_under_a_decoded_key():
    # On AWS the role may read only incoming/, uploads/, BatchPrefix and DatasetPrefix/test/: S3 answers 403
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403,
                              expected_params={"Bucket": BUCKET, "Key": "review/a+b.json"})
        with pytest.raises(app.ImageNotServedError, match=r"^s3://scones-offline/review/a\+b.json may not be read "
                                                          r"\(AccessDenied\): serialize-image reads only incoming/"):
            app.open_object(client, BUCKET, "review/a+b.json")
        stub.assert_no_pending_responses()
