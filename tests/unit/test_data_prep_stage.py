from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from data_prep.dataset import stage
from testkit.images import png_bytes


@pytest.fixture
def dataset(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        for i in range(3):
            (tmp_path / split / f"img_{i}.png").write_bytes(png_bytes(seed=i))
        (tmp_path / f"{split}.lst").write_text("0\t0\timg_0.png\n")
    (tmp_path / "manifest.csv").write_text("file,label\n")
    return tmp_path


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="scones-data")
        yield client


def test_first_run_uploads_everything_and_the_second_nothing(s3, dataset):
    first = stage.plan(s3, dataset, "scones-data", "prefix")
    assert len(first.new) == 9 and first.changed == first.unchanged == []
    assert stage.upload(s3, dataset, "scones-data", "prefix", first.to_upload) == 9

    second = stage.plan(s3, dataset, "scones-data", "prefix")
    assert second.to_upload == [] and len(second.unchanged) == 9
    head = s3.head_object(Bucket="scones-data", Key="prefix/train/img_1.png")
    assert head["ContentType"] == "image/png"


def test_changed_content_is_detected(s3, dataset):
    stage.upload(s3, dataset, "scones-data", "p", stage.plan(s3, dataset, "scones-data", "p").to_upload)
    (dataset / "train.lst").write_text("0\t1\timg_0.png\n")
    (dataset / "test" / "new.png").write_bytes(png_bytes(seed=9))

    plan = stage.plan(s3, dataset, "scones-data", "p")

    assert (plan.new, plan.changed) == (["test/new.png"], ["train.lst"])


def test_missing_bucket_names_the_bucket(s3, dataset):
    with pytest.raises(stage.StagingError, match="bucket 'no-such-bucket' does not exist"):
        stage.plan(s3, dataset, "no-such-bucket", "p")


def test_default_bucket_is_the_sagemaker_sessions(s3):
    session = boto3.Session(region_name="us-east-1")
    assert stage.default_bucket(session, create=False) == "sagemaker-us-east-1-123456789012"
    assert "sagemaker-us-east-1-123456789012" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # dry run
    assert stage.default_bucket(session) == "sagemaker-us-east-1-123456789012"
    assert "sagemaker-us-east-1-123456789012" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_access_denied_names_the_bucket(dataset):
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("list_objects_v2", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(stage.BucketAccessError, match="access denied to bucket 'locked'") as raised:
            stage.plan(client, dataset, "locked", "p")
    assert raised.value.exit_status == 3  # an environment problem, not bad input


def test_other_aws_errors_reach_the_cli_runner_as_they_are(dataset):
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("list_objects_v2", service_error_code="ExpiredToken", http_status_code=400)
        with pytest.raises(ClientError, match="ExpiredToken"):
            stage.plan(client, dataset, "scones-data", "p")
