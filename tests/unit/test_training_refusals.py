"""Training and deploying never read an AWS refusal as an absence: a reviewed image S3 refuses is not "unreadable"
(training on without it), and a refused DescribeStackResource is not "the stack has no rollback alarm"."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from common.artefacts import GroundTruthLabel
from data_prep.training.reviewed import ImageReader, Manifest, select_reviewed
from data_prep.training.sagemaker_deploy import rollback_alarms
from testkit.images import png_bytes

CLASSES = ["bicycle", "motorcycle"]


def reviewed(key: str) -> Manifest:
    label = GroundTruthLabel(f"s3://review-bucket/{key}", "bicycle", 0, "2026-11-24T10:00:00.000000", "review")
    return Manifest("s3://review-bucket/labels/exec-1.jsonl", [label])


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="review-bucket")
        client.put_object(Bucket="review-bucket", Key="incoming/a.png", Body=png_bytes(seed=3))
        yield client


def test_a_reviewed_image_s3_refuses_stops_training_instead_of_being_left_out(s3):
    def denied(**_):
        return SimpleNamespace(status_code=403, headers={}), {
            "Error": {"Code": "AccessDenied", "Message": "Access Denied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}

    s3.meta.events.register("before-call.s3.GetObject", denied)
    with pytest.raises(ClientError, match="AccessDenied"):
        select_reviewed([reviewed("incoming/a.png")], CLASSES, {}, ImageReader(s3=s3))


def test_a_reviewed_image_that_is_gone_is_unreadable_and_left_out(s3):
    warnings: list[str] = []
    result = select_reviewed([reviewed("incoming/gone.png"), reviewed("incoming/a.png")], CLASSES, {},
                             ImageReader(s3=s3), log=warnings.append)
    assert (result.unreadable, len(result.pixels)) == (["s3://review-bucket/incoming/gone.png"], 1)
    assert warnings[0].startswith("warning: s3://review-bucket/labels/exec-1.jsonl: s3://review-bucket/incoming/"
                                  "gone.png cannot be read")


def test_a_refused_look_for_the_rollback_alarms_is_not_a_stack_without_them():
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cloudformation) as cfn:
        cfn.add_client_error("describe_stack_resource", "AccessDenied", "not authorized to perform: "
                             "cloudformation:DescribeStackResource", http_status_code=403)
        with pytest.raises(ClientError, match="AccessDenied"):
            rollback_alarms(cloudformation, boto3.client("cloudwatch", region_name="us-east-1"), "scones", "ep")
