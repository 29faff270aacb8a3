"""One image identity: imaging.preprocess.content_hash, the SHA-256 of the model input's raw pixels (mode and size
first), on every road: serialize-image's `content_sha256` (the audit choice and the review labels go by it), the
review queue's hash of an image recorded before hashes, the training de-duplication, the dataset's manifest and
the report's labels. Golden values pin the definition; a PNG encoder (zlib, Pillow) does not enter it."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

import imaging.preprocess as preprocess
from common.artefacts import read_manifest
from data_prep.dataset.build import build_dataset
from data_prep.training.reviewed import content_hash as training_hash
from functions.serialize_image import app as serialize
from imaging.preprocess import content_hash, to_model_input
from monitoring.report import image_identity, labels_from_dataset
from review.queue import ReviewQueue
from review.store import FolderStore
from testkit.images import png_bytes
from testkit.review import CLASSES, queued_images, write_review_folder

PLAIN = Image.new("RGB", (32, 32), (1, 2, 3))


def photo() -> bytes:
    """A 200x120 JPEG: cropped, downscaled and re-coloured on the way to the model input."""
    pixels = np.random.default_rng(7).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_the_hash_is_the_pixels_after_their_mode_and_size():
    assert content_hash(PLAIN) == hashlib.sha256(b"RGB 32x32\n" + bytes([1, 2, 3]) * 1024).hexdigest()
    assert content_hash(PLAIN) == "9de707f85d8a55e818016bb33283a3cbdcb6d69df810b3228eee68493bd0ee5b"
    assert content_hash(to_model_input(png_bytes(seed=3))) == (
        "a283917868ef0de9ee3fd829a221965c7846a68ed1a88e46104aa37674cc2ff5")
    assert content_hash(Image.new("RGB", (16, 64), (1, 2, 3))) != content_hash(PLAIN)  # same bytes, other shape
    assert content_hash(Image.new("L", (96, 32), 1)) != content_hash(Image.new("RGB", (32, 32), (1, 1, 1)))


def test_no_png_encoder_enters_the_hash(monkeypatch):
    """A Pillow or zlib that encodes the same pixels into other bytes (the Lambda layer's build against a laptop's)
    must not move an audit choice or a labels/<hash>.jsonl key."""
    before = content_hash(to_model_input(photo()))

    def other_encoder(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    monkeypatch.setattr(preprocess, "encode_png", other_encoder)
    assert content_hash(to_model_input(photo())) == before


def test_the_same_image_has_the_same_hash_on_every_road(tmp_path, lambda_context):
    data = photo()
    expected = content_hash(to_model_input(data))

    with mock_aws():  # serialize-image: the body every later state, the filter's audit choice and the records carry
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="scones-offline")
        s3.put_object(Bucket="scones-offline", Key="incoming/photo.jpg", Body=data)
        body = serialize.lambda_handler({"s3_bucket": "scones-offline", "s3_key": "incoming/photo.jpg"},
                                        lambda_context)["body"]
    served_png = body["image_data"]

    (item,) = queued_images(1, hashes=False)  # a record written before hashes: the queue hashes its image itself
    folder = write_review_folder(tmp_path / "bucket", [item])
    (folder / item.key).write_bytes(data)
    (queued,) = ReviewQueue(FolderStore(folder), CLASSES).view().items

    (tmp_path / "photos" / "bicycle").mkdir(parents=True)
    (tmp_path / "photos" / "motorcycle").mkdir(parents=True)
    (tmp_path / "photos" / "bicycle" / "photo.jpg").write_bytes(data)
    (tmp_path / "photos" / "motorcycle" / "other.png").write_bytes(png_bytes(seed=4))
    build_dataset(tmp_path / "photos", None, tmp_path / "dataset", test_fraction=0.0)
    rows = {row.label: row for row in read_manifest(tmp_path / "dataset").values()}

    pixels = np.asarray(to_model_input(data), dtype=np.uint8)
    roads = {
        "serialize-image's content_sha256": body["content_sha256"],
        "serialize-image's PNG, hashed again": content_hash(to_model_input(base64.b64decode(served_png))),
        "the review queue (a record without a hash)": queued.content_sha256,
        "training's de-duplication": training_hash(pixels),
        "the dataset's manifest": rows["bicycle"].content_hash,
        "the report, a decoded capture": image_identity(pixels),
    }
    assert roads == dict.fromkeys(roads, expected)
    assert labels_from_dataset(tmp_path / "dataset")[expected] == "bicycle"  # the report finds its label by it


def test_the_report_reads_the_manifests_hashes_and_decodes_only_an_older_manifest(tmp_path, monkeypatch):
    (tmp_path / "photos" / "bicycle").mkdir(parents=True)
    (tmp_path / "photos" / "motorcycle").mkdir(parents=True)
    (tmp_path / "photos" / "bicycle" / "a.png").write_bytes(png_bytes(seed=5))
    (tmp_path / "photos" / "motorcycle" / "b.png").write_bytes(png_bytes(seed=6))
    build_dataset(tmp_path / "photos", None, tmp_path / "dataset", test_fraction=0.0)
    expected = labels_from_dataset(tmp_path / "dataset")

    import monitoring.report as report

    def no_decoding(data: bytes) -> Image.Image:
        raise AssertionError("decoded a dataset image although the manifest holds its hash")

    monkeypatch.setattr(report, "to_model_input", no_decoding)
    assert labels_from_dataset(tmp_path / "dataset") == expected
    monkeypatch.undo()

    manifest = tmp_path / "dataset" / "manifest.csv"  # as data_prep wrote it before content hashes
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    assert lines[0].endswith(",sha256,content_hash") and json.dumps(expected)
    assert labels_from_dataset(tmp_path / "dataset") == expected
    assert sorted(expected.values()) == ["bicycle", "motorcycle"]


@pytest.mark.parametrize("image", [PLAIN, Image.new("RGB", (32, 32), (250, 0, 9))])
def test_an_array_and_its_image_hash_alike(image):
    assert image_identity(np.asarray(image)) == content_hash(image) == training_hash(np.asarray(image))
