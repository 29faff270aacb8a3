"""The SageMaker SDK kept quiet, with telemetry off by default, on success and on failure (common.sagemaker_sdk); the
execution role found with the project's clients.

The SDK's noise is real only in a fresh process (its logging.basicConfig runs once, when a module is first
imported), so the training job runs in a subprocess against moto, beside the plain SDK doing the same for contrast.
"""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from common.sagemaker_sdk import NoExecutionRoleError, execution_role
from tests.support import bare_aws_environment

# Training jobs through the SDK's Estimator against moto: one that completes and one whose CreateTrainingJob AWS
# refuses, with telemetry as the project sets it by default, then with SCONES_SAGEMAKER_TELEMETRY=1. The plain SDK
# doing the same prints "INFO:sagemaker:Creating training-job with name: ..." and its job progress, and sends
# telemetry twice (see the module docstring of common.sagemaker_sdk).
SCRIPT = """
import os
from contextlib import nullcontext
from types import SimpleNamespace

import boto3
from moto import mock_aws

from common import sagemaker_sdk

sagemaker = sagemaker_sdk.load()
import sagemaker.estimator
import sagemaker.telemetry.telemetry_logging as telemetry

sent = []
telemetry._requests_helper = lambda url, timeout: sent.append(url)  # what the SDK would GET, not sent anywhere


def refuse_create_training_job(**_):
    error = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform: CreateTrainingJob"},
             "ResponseMetadata": {"HTTPStatusCode": 400}}
    return SimpleNamespace(status_code=400, headers={}), error


with mock_aws():
    boto = boto3.Session(region_name="us-east-1")
    boto.client("s3").create_bucket(Bucket="scones-data")
    for telemetry_setting in ("default", "1"):
        if telemetry_setting == "1":
            os.environ[sagemaker_sdk.TELEMETRY_ENV] = "1"
        session = sagemaker_sdk.session(boto, default_bucket="scones-data")
        for attempt in ("succeeds", "refused"):
            if attempt == "refused":
                session.sagemaker_client.meta.events.register("before-call.sagemaker.CreateTrainingJob",
                                                              refuse_create_training_job)
            try:
                with sagemaker_sdk.quiet():
                    estimator = sagemaker.estimator.Estimator(
                        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:1",
                        role="arn:aws:iam::123456789012:role/SageMakerRole", instance_count=1,
                        instance_type="ml.m5.large", output_path="s3://scones-data/out", sagemaker_session=session)
                    estimator.fit({"train": "s3://scones-data/train/"}, wait=True, logs=False)
                print(attempt, "ok")
            except Exception as error:
                print(attempt, type(error).__name__)
        print("telemetry", telemetry_setting, len(sent))
        sent.clear()
"""


def test_the_sdk_says_nothing_and_sends_telemetry_only_when_asked_on_success_or_failure(tmp_path):
    environment = bare_aws_environment(tmp_path / "home", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                                       AWS_REGION="us-east-1")
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=environment,
                          cwd=tmp_path, timeout=300)
    assert (done.stdout.splitlines(), done.stderr) == (
        ["succeeds ok", "refused ClientError", "telemetry default 0",
         "succeeds ok", "refused ClientError", "telemetry 1 2"], "")


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def test_an_assumed_role_is_the_execution_role_with_its_path(aws):
    trust = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "sagemaker.amazonaws.com"}}
    document = json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    role = aws.client("iam").create_role(RoleName="Trainer", Path="/ml/", AssumeRolePolicyDocument=document)["Role"]
    credentials = aws.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="me")["Credentials"]
    assumed = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"], region_name="us-east-1")
    assert execution_role(assumed) == "arn:aws:iam::123456789012:role/ml/Trainer"


def test_a_user_is_not_an_execution_role(aws):
    with pytest.raises(NoExecutionRoleError, match=r"the caller \(arn:aws:sts::123456789012:user/moto\) is not a role "
                                                   "SageMaker can assume: pass --role"):
        execution_role(aws)
