"""Every AWS call goes where botocore's endpoint settings say: AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE> and a
profile's endpoint_url (VPC endpoints, FIPS, an emulator). The SageMaker SDK's STS calls ignore them (a fixed
regional host); the default bucket, the account and the execution role come from the project's own clients.

AWS here is a moto server on 127.0.0.1, and the tests may connect to 127.0.0.1 only (pytest-socket's allow_hosts):
a call to a real AWS host fails the test, whether or not this machine has a network.
"""

from __future__ import annotations

import boto3
import pytest

from common import sagemaker_sdk
from common.artefacts import write_baseline
from data_prep.cli import main as data_prep_main
from monitoring.baseline import build_baseline
from monitoring.cli import main as monitoring_main
from testkit.capture import CLASSES, images, probabilities
from testkit.images import png_bytes
from tests.support import HANG_GUARD_S, bare_aws_variables, run_main
from workflow.offline.runtime import moto_http_server

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

REGION = "eu-west-1"
DEFAULT_BUCKET = f"sagemaker-{REGION}-123456789012"  # moto's account
KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_MAX_ATTEMPTS": "1"}


@pytest.fixture(scope="module")
def moto_url():
    with moto_http_server() as url:
        yield url


@pytest.fixture
def aws(moto_url, monkeypatch):
    """A clean account on the moto server (its state is shared by the module's tests) and samconfig.toml's
    DataBucketName="" (the default bucket)."""
    import requests

    requests.post(f"{moto_url}/moto-api/reset", timeout=HANG_GUARD_S)
    monkeypatch.setattr("common.settings.deployed_bucket", lambda: None)
    return boto3.client("s3", endpoint_url=moto_url, region_name=REGION, aws_access_key_id="a",
                        aws_secret_access_key="b")


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "dataset"
    for split in ("train", "test"):
        (folder / split).mkdir(parents=True)
        (folder / split / "bicycle_1.png").write_bytes(png_bytes(seed=len(split)))
    (folder / "manifest.csv").write_text("file,label\n")
    return folder


def keys(s3, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def run(main, arguments, tmp_path, monkeypatch, capsys, **variables):
    return run_main(main, arguments, monkeypatch=monkeypatch, capsys=capsys,
                    environment=bare_aws_variables(tmp_path / "home", **KEYS, **variables))


def test_stage_makes_the_default_bucket_through_aws_endpoint_url(aws, moto_url, dataset, tmp_path, monkeypatch,
                                                                   capsys):
    result = run(data_prep_main, ["stage", "--dataset", str(dataset)], tmp_path, monkeypatch, capsys,
                 AWS_ENDPOINT_URL=moto_url, AWS_REGION=REGION)
    assert result.status == 0, result.stderr
    assert f"created s3://{DEFAULT_BUCKET} (the SageMaker default bucket, in {REGION})" in result.stdout
    assert keys(aws, DEFAULT_BUCKET) == ["scones-image-classification/manifest.csv",
                                         "scones-image-classification/test/bicycle_1.png",
                                         "scones-image-classification/train/bicycle_1.png"]
    assert aws.get_bucket_location(Bucket=DEFAULT_BUCKET)["LocationConstraint"] == REGION


def test_per_service_endpoint_variables_are_honoured(aws, moto_url, tmp_path, monkeypatch, capsys):
    aws.create_bucket(Bucket=DEFAULT_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    baseline = write_baseline(tmp_path, build_baseline(images(20, 1), probabilities(20, 1), CLASSES))
    result = run(monitoring_main, ["upload-baseline", "--baseline", str(baseline)], tmp_path, monkeypatch, capsys,
                 AWS_ENDPOINT_URL_STS=moto_url, AWS_ENDPOINT_URL_S3=moto_url, AWS_REGION=REGION)
    assert (result.status, result.stderr) == (0, ""), result.stderr
    assert keys(aws, DEFAULT_BUCKET) == ["monitoring/baseline.json"]


def test_a_profiles_endpoint_url_is_honoured(aws, moto_url, dataset, tmp_path, monkeypatch, capsys):
    config = tmp_path / "config"
    config.write_text(f"[profile emulator]\nregion = {REGION}\nendpoint_url = {moto_url}\n"
                      "aws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n")
    result = run(data_prep_main, ["stage", "--dataset", str(dataset), "--dry-run", "--profile", "emulator"],
                 tmp_path, monkeypatch, capsys, AWS_CONFIG_FILE=str(config))
    assert (result.status, result.stderr) == (0, ""), result.stderr
    assert result.stdout.splitlines()[:2] == [
        f"s3://{DEFAULT_BUCKET} does not exist yet: the real run creates it (the SageMaker default bucket, in "
        f"{REGION})", f"s3://{DEFAULT_BUCKET}/scones-image-classification/: 3 new, 0 changed, 0 unchanged"]
    assert aws.list_buckets()["Buckets"] == []


def test_the_sdk_session_reaches_only_the_endpoint(aws, moto_url, monkeypatch, tmp_path):
    """Its config read, its default bucket checked: through S3 on the endpoint, no STS on a fixed host."""
    for name, value in bare_aws_variables(tmp_path / "home", **KEYS, AWS_ENDPOINT_URL=moto_url,
                                          AWS_REGION=REGION).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    aws.create_bucket(Bucket=DEFAULT_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    session = sagemaker_sdk.session(boto3.Session(region_name=REGION), default_bucket=DEFAULT_BUCKET)
    with sagemaker_sdk.quiet():
        assert session.default_bucket() == DEFAULT_BUCKET
