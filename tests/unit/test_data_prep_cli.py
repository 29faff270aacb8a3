"""`python -m data_prep` end to end on small inputs: image folder → dataset → (moto) S3."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from common import settings
from data_prep.cli import cli, main
from testkit.cifar import make_cifar_archive
from testkit.images import png_bytes

PER_CLASS = 4
# What `transform` writes for the photos below: their PNGs, train.lst and test.lst, manifest.csv, dataset.json.
DATASET_FILES = PER_CLASS * len(settings.class_names()) + 4


@pytest.fixture
def photos(tmp_path):
    """A folder of the template's ClassNames: what `transform` and `all` take by default."""
    for label in settings.class_names():
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(PER_CLASS):
            (tmp_path / "photos" / label / f"{label}_{i}.png").write_bytes(png_bytes(seed=i))
    return tmp_path / "photos"


def test_help_explains_every_step():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("extract", "transform", "stage", "all"):
        assert command in result.output


def test_all_from_an_image_folder_stages_once(photos, tmp_path):
    runner = CliRunner()
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="scones-data")
        args = ["all", "--source", str(photos), "--out", str(tmp_path / "ds"), "--bucket", "scones-data"]
        first = runner.invoke(cli, args)
        second = runner.invoke(cli, args)
        dry = runner.invoke(cli, ["stage", "--dataset", str(tmp_path / "ds"), "--bucket", "scones-data", "--dry-run"])
        (tmp_path / "ds" / "train" / "extra.png").write_bytes(png_bytes(seed=99))
        as_json = runner.invoke(cli, ["stage", "--dataset", str(tmp_path / "ds"), "--bucket", "scones-data",
                                      "--dry-run", "--json"])
        keys = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="scones-data")["KeyCount"]
    assert first.exit_code == 0, first.output
    assert f"uploaded {DATASET_FILES} files" in first.output
    assert "uploaded 0 files" in second.output
    assert f"0 new, 0 changed, {DATASET_FILES} unchanged" in dry.output
    assert keys == DATASET_FILES
    assert json.loads(as_json.output) == {"destination": f"s3://scones-data/{settings.dataset_prefix()}/",
                                          "dry_run": True, "bucket_created": False, "bucket_missing": False,
                                          "new": ["train/extra.png"], "changed": [], "unchanged": DATASET_FILES,
                                          "uploaded": 0}


def test_a_dry_run_before_the_default_bucket_exists_plans_every_file_as_new_and_creates_nothing(
        photos, tmp_path, monkeypatch):
    """samconfig.toml's DataBucketName="" means the SageMaker default bucket, which the first real stage creates."""
    monkeypatch.setattr("common.settings.deployed_bucket", lambda: None)
    runner = CliRunner()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        built = runner.invoke(cli, ["transform", "--source", str(photos), "--out", str(tmp_path / "ds")])
        dry = runner.invoke(cli, ["stage", "--dataset", str(tmp_path / "ds"), "--dry-run"])
        buckets_after_dry_run = s3.list_buckets()["Buckets"]
        real = runner.invoke(cli, ["stage", "--dataset", str(tmp_path / "ds")])
        staged = s3.list_objects_v2(Bucket="sagemaker-us-east-1-123456789012")["KeyCount"]
    assert built.exit_code == 0, built.output
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    assert lines[:2] == ["s3://sagemaker-us-east-1-123456789012 does not exist yet: the real run creates it (the "
                         "SageMaker default bucket, in us-east-1)",
                         f"s3://sagemaker-us-east-1-123456789012/{settings.dataset_prefix()}/: {DATASET_FILES} new, 0 "
                         "changed, 0 unchanged"]
    assert len([line for line in lines if line.startswith("  would upload ")]) == DATASET_FILES
    assert lines[-1] == "dry run: nothing was uploaded or created"
    assert buckets_after_dry_run == []
    assert real.exit_code == 0, real.output
    assert ("created s3://sagemaker-us-east-1-123456789012 (the SageMaker default bucket, in us-east-1)"
            in real.output.splitlines())
    assert staged == DATASET_FILES


def test_an_archive_that_is_not_the_published_cifar_fails_its_checksum(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "cifar-100-python.tar.gz"
    make_cifar_archive(archive)
    monkeypatch.setattr("sys.argv", ["data_prep", "transform", "--source", str(archive), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert "ChecksumError" in capsys.readouterr().err


def test_serverless_deploy_without_no_capture_is_refused_by_name(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["python -m data_prep", "deploy", "new", "--serverless", "--memory-mb",
                                     "4096", "--max-concurrency", "10", "--training-job", "any", "--no-gate"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("SageMakerSetupError: SageMaker Serverless Inference does not support "
                                              "data capture")


def test_serverless_and_instance_autoscaling_do_not_mix():
    result = CliRunner().invoke(cli, ["deploy", "new", "--serverless", "--no-capture", "--autoscale-max", "3",
                                      "--training-job", "any", "--no-gate"])
    assert result.exit_code == 2
    assert "--autoscale-max scales instances" in result.output


def test_local_training_prints_one_json_document_with_json(photos, tmp_path, monkeypatch):
    import data_prep.training.local

    def trained(data_dir, model_dir, config, **options):
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / "metadata.json").write_text('{"class_names": ["bicycle", "motorcycle"], "model_sha256": "ab"}')
        return {"accuracy": 0.9, "coverage": 0.5, "threshold": 0.93}

    monkeypatch.setattr(data_prep.training.local, "train_local", trained)
    result = CliRunner().invoke(cli, ["train", "local", "--data-dir", str(photos), "--model-dir",
                                      str(tmp_path / "m"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"model_dir": str(tmp_path / "m"), "reviewed_labels": None,
                                         "model_sha256": "ab",
                                         "metrics": {"accuracy": 0.9, "coverage": 0.5, "threshold": 0.93}}
