"""`classify-prefix` on AWS (moto): the stack's outputs by name, the prefix checked before anything starts."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from workflow.cli import main


@pytest.fixture
def stack():
    with mock_aws():
        template = {"Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                    "Outputs": {"DataBucketName": {"Value": "scones-data"},
                                "BatchStateMachineArn": {"Value": "arn:aws:states:us-east-1:123456789012:"
                                                                  "stateMachine:scones-batch-classification"}}}
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="scones", TemplateBody=json.dumps(template))
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="scones-data")
        yield


def run(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["python -m workflow", "classify-prefix", "--stack-name", "scones",
                                     "--region", "us-east-1", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code), capsys.readouterr().err


def test_a_prefix_outside_the_stacks_bucket_is_refused(stack, monkeypatch, capsys):
    status, err = run(monkeypatch, capsys, "--prefix", "s3://elsewhere/photos/")
    assert status == 2 and "the stack reads only s3://scones-data/" in err


def test_an_empty_prefix_is_refused_before_any_execution(stack, monkeypatch, capsys):
    status, err = run(monkeypatch, capsys, "--prefix", "s3://scones-data/photos/")
    assert status == 2 and err.strip() == "EmptyPrefixError: no objects under s3://scones-data/photos/"


@pytest.mark.parametrize("prefix,message", [("photos/", "is not an s3:// URI"),
                                            ("s3://scones-data/", "give a prefix"),
                                            ("s3://scones-data/batch-results/x/", "holds batch results")])
def test_bad_prefixes_are_named(stack, monkeypatch, capsys, prefix, message):
    status, err = run(monkeypatch, capsys, "--prefix", prefix)
    assert status == 2 and message in err


def test_a_prefix_outside_the_stacks_batch_prefix_is_refused_before_anything_starts(monkeypatch, capsys):
    with mock_aws():
        template = {"Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                    "Outputs": {"DataBucketName": {"Value": "scones-data"}, "BatchPrefix": {"Value": "batch/"},
                                "BatchStateMachineArn": {"Value": "arn:aws:states:us-east-1:123456789012:"
                                                                  "stateMachine:scones-batch-classification"}}}
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="scones", TemplateBody=json.dumps(template))
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="scones-data")
        status, err = run(monkeypatch, capsys, "--prefix", "s3://scones-data/photos/")
        assert status == 2 and "the stack's batch may list only s3://scones-data/batch/" in err
        status, err = run(monkeypatch, capsys, "--prefix", "s3://scones-data/batch/photos/")
        assert (status, err.strip()) == (2, "EmptyPrefixError: no objects under s3://scones-data/batch/photos/")
