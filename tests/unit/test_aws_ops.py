"""Operations commands against moto: stack outputs, test-case selection, trigger, cleanup."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from workflow import aws_ops

REGION = "us-east-1"


@pytest.fixture
def aws():
    with mock_aws():
        yield {name: boto3.client(name, region_name=REGION) for name in ("s3", "sagemaker", "cloudformation")}


def make_endpoint(sagemaker, name: str) -> None:
    sagemaker.create_model(ModelName=f"{name}-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                           PrimaryContainer={"Image": "img"})
    sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def test_stack_outputs_are_read_by_name(aws):
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"StateMachineArn": {"Value": "arn:sm"}, "DataBucketName": {"Value": "b"}}}
    aws["cloudformation"].create_stack(StackName="scones", TemplateBody=json.dumps(template))
    assert aws_ops.stack_outputs(aws["cloudformation"], "scones") == {"StateMachineArn": "arn:sm",
                                                                      "DataBucketName": "b"}
    with pytest.raises(aws_ops.OperationsError, match="stack 'missing' not found"):
        aws_ops.stack_outputs(aws["cloudformation"], "missing")


def test_test_cases_are_random_staged_test_images(aws):
    s3 = aws["s3"]
    s3.create_bucket(Bucket="data")
    for i in range(20):
        s3.put_object(Bucket="data", Key=f"p/test/img_{i}.png", Body=b"x")
    s3.put_object(Bucket="data", Key="p/train/other.png", Body=b"x")
    s3.put_object(Bucket="data", Key="p/test.lst", Body=b"x")

    picked = aws_ops.pick_test_keys(s3, "data", "p", 5, seed=1)

    assert len(set(picked)) == 5 and all(k.startswith("p/test/img_") for k in picked)
    assert picked == aws_ops.pick_test_keys(s3, "data", "p", 5, seed=1)
    with pytest.raises(aws_ops.OperationsError, match="no test images under s3://data/q/test/"):
        aws_ops.pick_test_keys(s3, "data", "q", 5)


def test_enabling_eventbridge_keeps_other_notifications(aws):
    s3 = aws["s3"]
    s3.create_bucket(Bucket="data")
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="q")["QueueUrl"]
    arn = "arn:aws:sqs:us-east-1:123456789012:q"
    assert queue
    s3.put_bucket_notification_configuration(Bucket="data", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectRemoved:*"]}]})

    assert aws_ops.enable_eventbridge(s3, "data") is True

    from moto.s3.models import s3_backends

    stored = s3_backends["123456789012"]["aws"].buckets["data"].notification_configuration
    assert stored.event_bridge is not None  # moto's GET leaves the empty element out; its state has it
    assert s3.get_bucket_notification_configuration(Bucket="data")["QueueConfigurations"][0]["QueueArn"] == arn


def test_an_enabled_bucket_is_left_alone():
    from botocore.stub import Stubber

    s3 = boto3.client("s3", region_name=REGION)
    with Stubber(s3) as stubber:  # AWS returns the empty configuration; no put follows
        stubber.add_response("get_bucket_notification_configuration", {"EventBridgeConfiguration": {}},
                             {"Bucket": "data"})
        assert aws_ops.enable_eventbridge(s3, "data") is False


def test_cleanup_deletes_only_what_belongs_to_the_endpoint_and_prefixes(aws):
    make_endpoint(aws["sagemaker"], "scones-image-classifier")
    make_endpoint(aws["sagemaker"], "someone-elses")
    s3 = aws["s3"]
    s3.create_bucket(Bucket="data")
    for key in ("data_capture/a.jsonl", "review/b.json", "keep/c.txt"):
        s3.put_object(Bucket="data", Key=key, Body=b"x")

    plan = aws_ops.plan_cleanup(aws["sagemaker"], "scones-image-classifier", stack_name=None, bucket="data",
                                prefixes=["data_capture", "review"])
    assert plan.lines() == [
        "SageMaker endpoint scones-image-classifier",
        "SageMaker endpoint config scones-image-classifier-config",
        "SageMaker model scones-image-classifier-model",
        "every object under s3://data/data_capture/",
        "every object under s3://data/review/",
    ]
    aws_ops.execute_cleanup(plan, sagemaker=aws["sagemaker"], cloudformation=aws["cloudformation"], s3=s3)

    endpoints = [e["EndpointName"] for e in aws["sagemaker"].list_endpoints()["Endpoints"]]
    assert endpoints == ["someone-elses"]
    models = [m["ModelName"] for m in aws["sagemaker"].list_models()["Models"]]
    assert models == ["someone-elses-model"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]] == ["keep/c.txt"]


def test_cleanup_of_a_missing_endpoint_plans_nothing(aws):
    plan = aws_ops.plan_cleanup(aws["sagemaker"], "gone", stack_name=None, bucket=None, prefixes=[])
    assert plan.lines() == []


def refusing_s3(keys: list[str], refused: dict[str, str]):
    """An S3 client (botocore Stubber) that lists `keys` under review/ and, in DeleteObjects' quiet mode, answers
    only the keys it did not delete (`refused`: key -> error code), as S3 does: an HTTP 200 with an Errors list."""
    from botocore.stub import Stubber

    s3 = boto3.client("s3", region_name=REGION)
    stubber = Stubber(s3)
    stubber.add_response("list_objects_v2", {"KeyCount": len(keys), "IsTruncated": False,
                                             "Contents": [{"Key": key, "Size": 1} for key in keys]},
                         {"Bucket": "data", "Prefix": "review/"})
    stubber.add_response("delete_objects", {"Errors": [{"Key": key, "Code": code, "Message": "Access Denied"}
                                                       for key, code in refused.items()]},
                         {"Bucket": "data", "Delete": {"Objects": [{"Key": key} for key in keys], "Quiet": True}})
    stubber.activate()
    return s3


def test_keys_s3_refused_to_delete_are_not_counted_as_deleted_but_named(aws):
    s3 = refusing_s3(["review/a.json", "review/b.json", "review/c.json"],
                     {"review/b.json": "AccessDenied", "review/c.json": "AccessDenied"})
    plan = aws_ops.CleanupPlan(s3_prefixes=["s3://data/review/"])
    announced: list[str] = []
    with pytest.raises(aws_ops.CleanupIncompleteError) as raised:
        aws_ops.execute_cleanup(plan, sagemaker=aws["sagemaker"], cloudformation=aws["cloudformation"], s3=s3,
                                announce=announced.append)
    assert announced == ["deleted 1 objects under s3://data/review/ (2 refused)"]
    assert str(raised.value) == ("S3 refused to delete 2 objects (first: review/b.json: AccessDenied: Access Denied); "
                                 "they are still there: check s3:DeleteObject on them (and any Object Lock), then "
                                 "run cleanup again")
    assert raised.value.exit_status == 3
