"""Retraining on what people labelled: Ground Truth manifests resolved to images (mirror folder or S3), de-duplicated
by the model input's content hash, recorded in the model's metadata."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

from common.artefacts import GroundTruthLabel, read_manifest, read_model_metadata, write_ground_truth_manifest
from data_prep.dataset.build import build_dataset
from data_prep.dataset.transform import model_pixels
from data_prep.training.config import TrainConfig
from data_prep.training.data import load_training_data
from data_prep.training.local import train_local
from data_prep.training.reviewed import (
    ImageReader,
    LabelsError,
    Manifest,
    content_hash,
    mirror_root,
    read_manifests,
    select_reviewed,
)
from testkit.images import labelled_folder, png_bytes

QUICK = TrainConfig(members=1, epochs=1, batch_size=8, threads=1, distill=0.0)
CLASSES = ["bicycle", "motorcycle"]


def label(key: str, name: str, date: str = "2026-11-24T10:00:00.000000", bucket: str = "scones-offline"):
    return GroundTruthLabel(f"s3://{bucket}/{key}", name, CLASSES.index(name) if name in CLASSES else 9, date)


@pytest.fixture
def training(tmp_path):
    return labelled_folder(tmp_path / "photos", per_class=6)


@pytest.fixture
def mirror(tmp_path, training):
    """A bucket left on disk: two new images, a training photo re-encoded (other bytes, the same pixels), one
    labelled with a class the model does not have, one whose image is missing, and a blind audit's label."""
    root = tmp_path / "out" / "bucket"
    (root / "incoming").mkdir(parents=True)
    (root / "incoming" / "new-1.png").write_bytes(png_bytes(seed=101))
    (root / "incoming" / "new-2.png").write_bytes(png_bytes(seed=102))
    (root / "incoming" / "tractor.png").write_bytes(png_bytes(seed=103))
    (root / "incoming" / "audited.png").write_bytes(png_bytes(seed=104))
    copy = Image.open(training / "bicycle" / "bicycle_s_000000.png")
    buffer = io.BytesIO()
    copy.save(buffer, format="PNG", pnginfo=None, compress_level=1, dpi=(300, 300))  # other bytes, same pixels
    (root / "incoming" / "copy.png").write_bytes(buffer.getvalue())
    assert buffer.getvalue() != (training / "bicycle" / "bicycle_s_000000.png").read_bytes()
    write_ground_truth_manifest(root / "labels" / "exec-1.jsonl", [label("incoming/new-1.png", "motorcycle")])
    write_ground_truth_manifest(root / "labels" / "exec-2.jsonl", [
        label("incoming/new-2.png", "bicycle"), label("incoming/copy.png", "motorcycle"),
        label("incoming/tractor.png", "tractor"), label("incoming/gone.png", "bicycle"),
        replace(label("incoming/audited.png", "bicycle"), extra={"review": {"id": "exec-3", "audit": True}})])
    return root


def test_content_hash_is_the_datasets_manifest_content_hash_for_the_same_image(tmp_path, training):
    build_dataset(training, None, tmp_path / "dataset", test_fraction=0.25)
    for file, row in read_manifest(tmp_path / "dataset").items():
        assert content_hash(model_pixels((tmp_path / "dataset" / file).read_bytes())) == row.content_hash


def test_a_mirror_is_found_from_a_manifest_under_its_labels_folder(mirror, tmp_path):
    assert mirror_root(mirror / "labels" / "exec-1.jsonl") == mirror.resolve()
    assert mirror_root(tmp_path / "elsewhere.jsonl") is None


def test_retraining_adds_the_reviewed_images_and_the_metadata_says_which(training, mirror, tmp_path):
    notes: list[str] = []
    metrics = train_local(training, tmp_path / "model", QUICK, validation_fraction=0.25,
                          labels=mirror / "labels", log=notes.append)

    reviewed = read_model_metadata(tmp_path / "model")["reviewed_labels"]
    assert reviewed == {
        "source": str(mirror / "labels"), "used": 2,
        "manifests": [{"manifest": str(mirror / "labels" / "exec-1.jsonl"), "lines": 1, "used": 1},
                      {"manifest": str(mirror / "labels" / "exec-2.jsonl"), "lines": 5, "used": 1}],
        "duplicates_of_training": 1, "conflicts_with_training": 1, "relabelled": 0, "unknown_class": 1,
        "audits_kept_for_judging": 1,  # a blind audit judges models: it never trains one
        "unreadable": 1, "unreadable_refs": ["s3://scones-offline/incoming/gone.png"],
        "content_hash": "sha256 of the model input's pixels (imaging.preprocess.content_hash)",
        "removed_from_validation": 0,
    }
    assert metrics["train_count"] == 9 + 2  # 12 photos less the 25% validation hold-out, plus the two new ones
    assert [note.split(": ", 1)[0] for note in notes] == ["warning", "warning"]
    assert "incoming/tractor.png is labelled 'tractor', not one of ['bicycle', 'motorcycle']: not used" in notes[0]
    assert "incoming/gone.png cannot be read" in notes[1]


def test_the_latest_label_of_an_image_labelled_twice_wins(mirror, tmp_path):
    manifests = [Manifest("a", [label("incoming/new-1.png", "motorcycle", "2026-11-24T10:00:00.000000")],
                          mirror / "labels" / "a.jsonl"),
                 Manifest("b", [label("incoming/new-1.png", "bicycle", "2026-11-24T11:00:00.000000")],
                          mirror / "labels" / "b.jsonl")]
    for order in (manifests, manifests[::-1]):
        reviewed = select_reviewed(order, CLASSES, {}, ImageReader())
        assert (reviewed.labels, reviewed.relabelled) == ([0], 1)
        assert {m["manifest"]: m["used"] for m in reviewed.manifests} == {"a": 0, "b": 1}


def test_a_reviewed_image_leaves_the_validation_set(training, tmp_path):
    _, validation, _ = load_training_data(training, 0.25)
    source = training / CLASSES[int(validation.labels[0])] / validation.names[0]
    bucket = tmp_path / "bucket"
    (bucket / "test").mkdir(parents=True)
    (bucket / "test" / "v.png").write_bytes(source.read_bytes())
    write_ground_truth_manifest(bucket / "labels" / "x.jsonl",
                                [label("test/v.png", CLASSES[int(validation.labels[0])])])

    train_local(training, tmp_path / "model", QUICK, validation_fraction=0.25, labels=bucket / "labels")

    reviewed = read_model_metadata(tmp_path / "model")["reviewed_labels"]
    assert (reviewed["used"], reviewed["removed_from_validation"]) == (1, 1)  # it trains now, and is not scored
    report = json.loads((tmp_path / "model" / "validation_report.json").read_text())
    assert len(report["predictions"]) == len(validation) - 1
    assert validation.names[0] not in [row["file"] for row in report["predictions"]]


def test_labels_and_images_are_read_from_s3(training, tmp_path):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="review-bucket")
        s3.put_object(Bucket="review-bucket", Key="incoming/new.png", Body=png_bytes(seed=7))
        line = label("incoming/new.png", "motorcycle", bucket="review-bucket").as_line()
        s3.put_object(Bucket="review-bucket", Key="labels/exec-9.jsonl", Body=(line + "\n").encode())
        s3.put_object(Bucket="review-bucket", Key="labels/.hidden.jsonl.part", Body=b"half a line")
        manifests = read_manifests("s3://review-bucket/labels/", s3=s3)
        reviewed = select_reviewed(manifests, CLASSES, {}, ImageReader(s3=s3))
        with pytest.raises(LabelsError, match="no Ground Truth manifests"):
            read_manifests("s3://review-bucket/nothing/", s3=s3)
    assert [m.where for m in manifests] == ["s3://review-bucket/labels/exec-9.jsonl"]
    assert reviewed.labels == [1]
    assert np.array_equal(reviewed.pixels[0], model_pixels(png_bytes(seed=7)))


def test_a_folder_without_manifests_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelsError, match="no Ground Truth manifests"):
        read_manifests(tmp_path / "empty")
