from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from common.buckets import BucketAccessError, BucketChoice, BucketMissingError, data_bucket
from data_prep.dataset import stage
from data_prep.dataset.build import stage_dataset
from testkit.images import png_bytes

DATA = BucketChoice("scones-data", "--bucket")


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
    first = stage.plan(s3, dataset, DATA, "prefix")
    assert len(first.new) == 9 and first.changed == first.unchanged == []
    assert stage.upload(s3, dataset, DATA, "prefix", first.to_upload) == 9

    second = stage.plan(s3, dataset, DATA, "prefix")
    assert second.to_upload == [] and len(second.unchanged) == 9
    head = s3.head_object(Bucket="scones-data", Key="prefix/train/img_1.png")
    assert head["ContentType"] == "image/png"


def test_changed_content_is_detected(s3, dataset):
    stage.upload(s3, dataset, DATA, "p", stage.plan(s3, dataset, DATA, "p").to_upload)
    (dataset / "train.lst").write_text("0\t1\timg_0.png\n")
    (dataset / "test" / "new.png").write_bytes(png_bytes(seed=9))

    plan = stage.plan(s3, dataset, DATA, "p")

    assert (plan.new, plan.changed) == (["test/new.png"], ["train.lst"])


def test_missing_bucket_names_the_bucket(s3, dataset):
    with pytest.raises(BucketMissingError, match="bucket 'no-such-bucket' does not exist: create it, or check "
                                                 "--bucket") as raised:
        stage.plan(s3, dataset, BucketChoice("no-such-bucket", "--bucket"), "p")
    assert raised.value.exit_status == 3


def test_the_default_bucket_is_named_and_created_without_the_sagemaker_sdk(s3, dataset, monkeypatch):
    monkeypatch.setattr("common.settings.deployed_bucket", lambda: None)  # samconfig.toml's DataBucketName=""
    session = boto3.Session(region_name="us-east-1")
    choice = data_bucket(None, session)
    assert (choice.name, choice.source, choice.account) == ("sagemaker-us-east-1-123456789012", "default",
                                                            "123456789012")
    dry = stage_dataset(s3, dataset, choice, "p", dry_run=True)
    assert (dry.bucket_missing, dry.bucket_created, len(dry.new), dry.uploaded) == (True, False, 9, 0)
    assert choice.name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # a dry run creates nothing
    real = stage_dataset(s3, dataset, choice, "p", dry_run=False)
    assert (real.bucket_missing, real.bucket_created, real.uploaded) == (False, True, 9)
    assert choice.name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    again = stage_dataset(s3, dataset, choice, "p", dry_run=True)
    assert (again.bucket_missing, again.bucket_created, len(again.unchanged)) == (False, False, 9)


def test_the_default_bucket_is_made_in_the_clients_region_with_its_location_constraint(dataset):
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        choice = BucketChoice("sagemaker-eu-west-1-123456789012", "default", "123456789012")
        stage_dataset(client, dataset, choice, "p", dry_run=False)
        assert client.get_bucket_location(Bucket=choice.name)["LocationConstraint"] == "eu-west-1"


def test_a_named_bucket_is_never_created_even_by_a_real_run(s3, dataset):
    with pytest.raises(BucketMissingError):
        stage_dataset(s3, dataset, BucketChoice("not-made", "samconfig.toml"), "p", dry_run=False)
    assert "not-made" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_access_denied_names_the_bucket(dataset):
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("list_objects_v2", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(BucketAccessError, match="access denied to bucket 'locked'") as raised:
            stage.plan(client, dataset, BucketChoice("locked", "--bucket"), "p")
    assert raised.value.exit_status == 3  # an environment problem, not bad input


def test_other_aws_errors_reach_the_cli_runner_as_they_are(dataset):
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("list_objects_v2", service_error_code="ExpiredToken", http_status_code=400)
        with pytest.raises(ClientError, match="ExpiredToken"):
            stage.plan(client, dataset, DATA, "p")
