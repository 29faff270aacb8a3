"""`monitoring upload-baseline` on AWS (moto): the stack's bucket by default, and a missing bucket said in one line.

Through the real main() (run_cli: exit status, stdout and stderr apart). A bucket refused by AWS is in
tests/integration/test_aws_errors_cli.py (the refusing stub on 127.0.0.1).
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from common.artefacts import write_baseline
from monitoring.baseline import build_baseline
from monitoring.cli import main
from testkit.capture import CLASSES, images, probabilities
from tests.support import run_main

DEFAULT_BUCKET = "sagemaker-us-east-1-123456789012"  # moto's account, the stack's bucket when DataBucketName=""
MODEL_SHA256 = "5ca1ab1e" * 8  # the model the baseline was written with


@pytest.fixture(scope="module")
def baseline_path(tmp_path_factory):
    return write_baseline(tmp_path_factory.mktemp("baseline"),
                          {**build_baseline(images(40, 10), probabilities(20, 10), CLASSES),
                           "model_sha256": MODEL_SHA256})


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setattr("common.settings.deployed_bucket", lambda: None)  # samconfig.toml's DataBucketName=""
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def upload(monkeypatch, capsys, baseline_path, *extra: str):
    return run_main(main, ["upload-baseline", "--baseline", str(baseline_path), "--region", "us-east-1", *extra],
                    monkeypatch=monkeypatch, capsys=capsys)


def test_without_bucket_the_baseline_goes_to_the_stacks_default_bucket(s3, baseline_path, monkeypatch, capsys):
    s3.create_bucket(Bucket=DEFAULT_BUCKET)
    result = upload(monkeypatch, capsys, baseline_path)
    assert (result.status, result.stderr) == (0, "")
    assert result.stdout == (f"s3://{DEFAULT_BUCKET}/monitoring/baseline.json of model sha256 {MODEL_SHA256} (classes "
                             f"{', '.join(CLASSES)}); the next scheduled drift check reads it\n")
    stored = s3.get_object(Bucket=DEFAULT_BUCKET, Key="monitoring/baseline.json")
    assert stored["Body"].read() == baseline_path.read_bytes() and stored["ContentType"] == "application/json"
    assert stored["Metadata"] == {"model-sha256": MODEL_SHA256}  # which model's baseline the stack checks against


def test_a_default_bucket_that_does_not_exist_is_one_line_and_status_3(s3, baseline_path, monkeypatch, capsys):
    result = upload(monkeypatch, capsys, baseline_path)
    assert (result.status, result.stdout) == (3, "")
    assert result.stderr_lines == [f"BucketMissingError: bucket '{DEFAULT_BUCKET}' does not exist: it is the SageMaker "
                                   "default bucket the stack uses: `.venv/bin/python -m data_prep stage` creates it"]


def test_a_named_bucket_that_does_not_exist_is_one_line_and_status_3(s3, baseline_path, monkeypatch, capsys):
    result = upload(monkeypatch, capsys, baseline_path, "--bucket", "not-a-bucket-of-ours")
    assert (result.status, result.stdout) == (3, "")
    assert result.stderr_lines == ["BucketMissingError: bucket 'not-a-bucket-of-ours' does not exist: create it, or "
                                   "check --bucket (without it: samconfig.toml's DataBucketName, else the default "
                                   "bucket)"]
    assert [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]] == []  # nothing was created


def test_samconfigs_bucket_is_the_default_when_it_names_one(s3, baseline_path, monkeypatch, capsys):
    monkeypatch.setattr("common.settings.deployed_bucket", lambda: "deployed-data")
    s3.create_bucket(Bucket="deployed-data")
    assert upload(monkeypatch, capsys, baseline_path).status == 0
    assert s3.list_objects_v2(Bucket="deployed-data")["KeyCount"] == 1


def test_help_says_where_the_default_bucket_comes_from(monkeypatch, capsys):
    result = run_main(main, ["upload-baseline", "--help"], monkeypatch=monkeypatch, capsys=capsys)
    text = " ".join(result.stdout.split())
    assert result.status == 0 and "required" not in text
    assert ("--bucket TEXT The stack's data bucket (its DataBucketName output). Default: samconfig.toml's "
            "DataBucketName when it names one, else the SageMaker default bucket (sagemaker-REGION-ACCOUNT), as the "
            "stack uses then.") in text


def test_a_baseline_of_another_model_or_of_none_is_refused_before_aws(s3, tiny_model, baseline_path, tmp_path,
                                                                     monkeypatch, capsys):
    """--model's sha256 must be the one --baseline was written with; a baseline that names none cannot say whose
    it is."""
    model_sha256 = json.loads((tiny_model / "metadata.json").read_text())["model_sha256"]
    other = upload(monkeypatch, capsys, baseline_path, "--model", str(tiny_model), "--bucket", "bbb")
    assert (other.status, other.stderr_lines) == (2, [
        f"ArtefactError: {baseline_path} is the baseline of model sha256 {MODEL_SHA256[:12]}..., not of the model in "
        f"{tiny_model} ({model_sha256[:12]}...): use the baseline written with this model (drop --baseline)"])
    anonymous = write_baseline(tmp_path, build_baseline(images(40, 10), probabilities(20, 10), CLASSES))
    nameless = upload(monkeypatch, capsys, anonymous, "--bucket", "bbb")
    assert (nameless.status, nameless.stderr_lines) == (2, [
        f"ArtefactError: {anonymous} names no model (model_sha256; a baseline written before baselines named their "
        "model): train the model again, or upload --model's own"])
    assert s3.list_buckets()["Buckets"] == []  # refused before any AWS call
    s3.create_bucket(Bucket="bbb")
    own = run_main(main, ["upload-baseline", "--model", str(tiny_model), "--bucket", "bbb", "--region", "us-east-1"],
                   monkeypatch=monkeypatch, capsys=capsys)
    assert own.status == 0, own.stderr
    stored = s3.get_object(Bucket="bbb", Key="monitoring/baseline.json")
    assert stored["Metadata"] == {"model-sha256": model_sha256}
    assert json.loads(stored["Body"].read())["model_sha256"] == model_sha256
