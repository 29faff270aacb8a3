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


@pytest.mark.parametrize("failed,status,line", [
    ({}, 0, "OK: none of the 2 objects failed (1 classified, 1 sent to review)"),
    ({"batch/photos/notes.txt": "NotAnImageError"}, 1,
     "FAILED: 1 of 3 objects failed unexpectedly (NotAnImageError 1)"),
])
def test_objects_that_failed_unexpectedly_say_failed_and_exit_1_as_start_executions_does(
        stack, monkeypatch, capsys, tmp_path, failed, status, line):
    import workflow.batch
    from workflow.batch import batch_verdict

    boto3.client("s3", region_name="us-east-1").put_object(Bucket="scones-data", Key="batch/photos/a.png", Body=b"x")

    def batch(*args, **kwargs) -> dict:  # the batch as the state machine reports it (summarize-batch's document)
        summary = {"bucket": "scones-data", "prefix": "batch/photos/", "objects": 2 + len(failed), "complete": True,
                   "classified": {"count": 1, "keys": ["batch/photos/a.png"], "labels": {"bicycle": 1}},
                   "review": {"count": 1, "keys": ["batch/photos/b.png"]},
                   "failed": {"count": len(failed), "keys": failed}, "status": "SUCCEEDED"}
        summary["unexpected"], summary["verdict"] = batch_verdict(summary)
        return summary

    monkeypatch.setattr(workflow.batch, "classify_prefix", batch)
    monkeypatch.setattr(workflow.batch, "download_results", lambda *args: None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["python -m workflow", "classify-prefix", "--stack-name", "scones", "--region",
                                     "us-east-1", "--prefix", "s3://scones-data/batch/photos/"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == status
    assert capsys.readouterr().out.splitlines()[-1] == line
    assert json.loads((tmp_path / "out" / "batch" / "batch_summary.json").read_text())["verdict"] == line
