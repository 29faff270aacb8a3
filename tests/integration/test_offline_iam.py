"""Offline, each function runs with its role from the transformed template, as on AWS: a handler reaching outside
its role is refused with the service's own AccessDenied (workflow.offline.iam). Faults are injected for real: the
function's environment points it at someone else's bucket or endpoint, as a wrong deployment would."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from botocore.exceptions import ClientError

from common.settings import OFFLINE_REGION, staged_dataset_key
from testkit.images import png_bytes
from tests.support import TWO_CLASSES
from workflow.offline.iam import FAKE_SECRET
from workflow.offline.runtime import OfflineRuntime

OTHER_BUCKET = "someone-elses-bucket"
OTHER_ENDPOINT = "someone-elses-endpoint"
PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/{role}/{function}"


@pytest.fixture(scope="module")
def misdirected(endpoint, lambda_logs):
    overrides = {"SerializeImageFunction": {"UPLOAD_BUCKET": OTHER_BUCKET},
                 "ClassifyImageFunction": {"ENDPOINT_NAME": OTHER_ENDPOINT}}
    with OfflineRuntime(endpoint.url, lambda_log_dir=lambda_logs, parameter_overrides=TWO_CLASSES, trigger=False,
                        environment_overrides=overrides) as offline:
        offline.s3.create_bucket(Bucket=OTHER_BUCKET)  # it exists: only IAM stands in the way
        yield offline


def signed_as(runtime: OfflineRuntime, function: str, service: str, **kwargs):
    """A client signed with the function's role credentials (what Lambda puts in its environment)."""
    identity = runtime.functions[function].identity
    assert identity is not None
    return boto3.client(service, region_name=OFFLINE_REGION, aws_access_key_id=identity.access_key,
                        aws_secret_access_key=FAKE_SECRET, aws_session_token=f"offline-iam-session-{identity.session}",
                        **kwargs)


def test_serialize_image_staging_an_upload_in_another_bucket_is_refused(misdirected):
    image = png_bytes(seed=41)
    upload = {"image_data": base64.b64encode(image).decode(), "s3_bucket": "", "s3_key": ""}  # the API's shape
    arn = misdirected.sfn.start_execution(stateMachineArn=misdirected.state_machine_arn,
                                          input=json.dumps(upload))["executionArn"]
    result = misdirected.wait(arn)

    assert (result.status, result.error) == ("FAILED", "AccessDenied")  # botocore's class for S3's error code
    principal = PRINCIPAL.format(role="SerializeImageFunctionRole", function="SerializeImageFunction")
    (denial,) = [d for d in misdirected.iam.denials if d.call == "s3.PutObject"]
    assert denial.principal == principal and denial.action == "s3:PutObject"
    assert denial.resource.startswith(f"arn:aws:s3:::{OTHER_BUCKET}/uploads/")
    assert result.cause_message == (
        f"An error occurred (AccessDenied) when calling the PutObject operation: User: {principal} is not authorized "
        f'to perform: s3:PutObject on resource: "{denial.resource}" because no identity-based policy allows the '
        "s3:PutObject action")
    assert misdirected.s3.list_objects_v2(Bucket=OTHER_BUCKET)["KeyCount"] == 0  # the call never reached S3


def test_classify_image_invoking_another_endpoint_is_refused_before_the_call_leaves(misdirected, endpoint):
    key = staged_dataset_key("test/misdirected.png")
    misdirected.put_image(key, png_bytes(seed=42))

    result = misdirected.run(key)

    assert (result.status, result.error) == ("FAILED", "ModelInvocationError")
    principal = PRINCIPAL.format(role="ClassifyImageFunctionRole", function="ClassifyImageFunction")
    assert result.cause_message == (
        f"{OTHER_ENDPOINT}: AccessDeniedException (HTTP 400): User: {principal} is not authorized to perform: "
        f"sagemaker:InvokeEndpoint on resource: arn:aws:sagemaker:{OFFLINE_REGION}:123456789012:endpoint/"
        f"{OTHER_ENDPOINT} because no identity-based policy allows the sagemaker:InvokeEndpoint action")
    assert endpoint.invocations == []


def test_s3_refuses_with_its_wire_shape_and_tells_missing_from_forbidden_only_to_a_lister(misdirected):
    serialize = signed_as(misdirected, "SerializeImageFunction", "s3")
    with pytest.raises(ClientError) as refused:
        serialize.get_object(Bucket=misdirected.bucket, Key="labels/a.jsonl")  # outside its prefixes
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert error["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    with pytest.raises(ClientError) as missing:  # inside them, and it may list the bucket: 404
        serialize.get_object(Bucket=misdirected.bucket, Key=staged_dataset_key("test/none.png"))
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"

    drift = signed_as(misdirected, "CheckDriftFunction", "s3")  # may read the capture, may not list the bucket
    capture = misdirected.template.resolve({"Fn::Sub": "${DataCapturePrefix}/${EndpointName}/none.jsonl"})
    with pytest.raises(ClientError) as hidden:
        drift.get_object(Bucket=misdirected.bucket, Key=capture)
    assert (hidden.value.response["Error"]["Code"], hidden.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDenied", 403)


def test_a_json_service_refuses_with_access_denied_exception(misdirected):
    classify = signed_as(misdirected, "ClassifyImageFunction", "sagemaker-runtime",
                         endpoint_url=misdirected.endpoint_url)
    with pytest.raises(ClientError) as refused:
        classify.invoke_endpoint(EndpointName=OTHER_ENDPOINT, ContentType="image/png", Body=b"x")
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDeniedException", 400)


def test_the_workflows_own_clients_are_not_held_to_a_role(misdirected):
    misdirected.s3.put_object(Bucket=misdirected.bucket, Key="anywhere/a.txt", Body=b"the test's own credentials")
    assert misdirected.s3.get_object(Bucket=misdirected.bucket, Key="anywhere/a.txt")["Body"].read()


def test_the_quality_check_reads_a_label_gone_since_its_listing_as_missing_through_its_role(misdirected):
    """The quality role lists only review/, audit/ and labels/, so S3 answers a key deleted between its listing and
    its read (a label undone on the review page) with 403, not 404: the check's reader takes that as missing and
    skips it, where it used to fail the whole scheduled check."""
    from modelquality.bucket import S3Bucket

    quality = signed_as(misdirected, "CheckQualityFunction", "s3")
    with pytest.raises(ClientError) as hidden:
        quality.get_object(Bucket=misdirected.bucket, Key="labels/undone.jsonl")
    assert hidden.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):  # any other reader still sees the refusal
        S3Bucket(quality, misdirected.bucket).read("labels/undone.jsonl")
    with pytest.raises(FileNotFoundError, match="labels/undone.jsonl"):
        S3Bucket(quality, misdirected.bucket, forbidden_is_missing=True).read("labels/undone.jsonl")
