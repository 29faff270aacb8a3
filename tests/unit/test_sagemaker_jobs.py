"""The exact SageMaker requests of the one model line, with botocore Stubbers (S3 in moto):
CreateTrainingJob (script mode, this project's trainer), CreateModel (the archive and which bytes it is),
CreateEndpointConfig (capture), CreateEndpoint; and what is refused before anything is created."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from common.model_archive import resolve_model
from data_prep.packaging import TRAINING_PROGRAM
from data_prep.training import sagemaker_deploy as hosting
from data_prep.training import sagemaker_jobs
from data_prep.training.config import TrainConfig

BUCKET = "scones-data"
PREFIX = "scones-image-classification"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
TRAINING_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-cpu-py312"
INFERENCE_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
ENDPOINT = "scones-image-classifier"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        session.client("s3").create_bucket(Bucket=BUCKET)
        yield session


@pytest.fixture
def staged(aws):
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/train.lst", Body=b"0\t0\ta.png\n1\t1\tb.png\n2\t1\tc.png\n")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/test.lst", Body=b"0\t0\td.png\n")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dataset.json",
                  Body=json.dumps({"class_names": ["bicycle", "motorcycle"]}).encode())
    return sagemaker_jobs.StagedData(BUCKET, PREFIX)


def job(staged, **changes) -> sagemaker_jobs.TrainingJob:
    values = {"name": "scones-test", "role": ROLE, "region": "us-east-1", "staged": staged,
              "config": TrainConfig(epochs=60, seed=3), "threshold": 0.93, **changes}
    return sagemaker_jobs.TrainingJob(**values)


def test_the_images_are_the_pytorch_containers_the_sdk_lists():
    assert sagemaker_jobs.training_image("us-east-1") == TRAINING_IMAGE
    assert hosting.inference_image("us-east-1") == INFERENCE_IMAGE


def test_the_training_request_is_script_mode_running_our_trainer(aws, staged):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    source = f"s3://{BUCKET}/models/scones-test/source/sourcedir.tar.gz"
    hyperparameters = {
        "members": '"3"', "serve_ensemble": '"0"', "distill": '"0.7"', "epochs": '"60"', "batch_size": '"64"',
        "peak_learning_rate": '"0.1"', "weight_decay": '"0.0005"', "label_smoothing": '"0.0"',
        "mixup_alpha": '"0.0"', "cutout": '"0"', "kfold": '"1"', "widths": '"16,32,64"', "seed": '"3"',
        "threads": '"2"', "preset": '"scratch"', "input_size": '"112"', "threshold": '"0.93"',
        "validation_fraction": '"0.2"',
        "scones_trainer": '"scones-image-classification"', "classes": '"bicycle,motorcycle"',
        "sagemaker_program": json.dumps(TRAINING_PROGRAM), "sagemaker_submit_directory": json.dumps(source),
        "sagemaker_container_log_level": "20", "sagemaker_job_name": '"scones-test"',
        "sagemaker_region": '"us-east-1"'}
    with Stubber(sagemaker) as stubber:
        stubber.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/s"},
                             {"TrainingJobName": "scones-test", "RoleArn": ROLE,
                              "AlgorithmSpecification": {"TrainingImage": TRAINING_IMAGE, "TrainingInputMode": "File"},
                              "HyperParameters": hyperparameters,
                              "InputDataConfig": [
                                  {"ChannelName": "train", "DataSource": {"S3DataSource": {
                                      "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{PREFIX}/",
                                      "S3DataDistributionType": "FullyReplicated"}}},
                                  {"ChannelName": "labels", "DataSource": {"S3DataSource": {
                                      "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/labels/",
                                      "S3DataDistributionType": "FullyReplicated"}}}],
                              "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
                              "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                                                 "VolumeSizeInGB": 30},
                              "StoppingCondition": {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600},
                              "EnableManagedSpotTraining": True,
                              "Tags": [{"Key": "scones:trainer", "Value": "scones-image-classification"},
                                       {"Key": "scones:source-sha256", "Value": ANY}]})  # checked below
        request = sagemaker_jobs.start_training(
            sagemaker, aws.client("s3"), job(staged, classes=["bicycle", "motorcycle"], labels=f"s3://{BUCKET}/labels",
                                             spot=True, max_run_seconds=1800), TRAINING_IMAGE)
        stubber.assert_no_pending_responses()
    uploaded = aws.client("s3").get_object(Bucket=BUCKET, Key="models/scones-test/source/sourcedir.tar.gz")["Body"]
    assert request["Tags"][1]["Value"] == hashlib.sha256(uploaded.read()).hexdigest()


def test_nothing_staged_is_refused_before_anything_is_uploaded_or_created(aws):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sagemaker) as stubber, pytest.raises(sagemaker_jobs.SageMakerSetupError,
                                                      match="run `.venv/bin/python -m data_prep all`"):
        sagemaker_jobs.start_training(sagemaker, aws.client("s3"),
                                      job(sagemaker_jobs.StagedData(BUCKET, "empty")), TRAINING_IMAGE)
        stubber.assert_no_pending_responses()
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="models/")


def described_job(status: str, **extra) -> dict:
    return {"TrainingJobName": "scones-test", "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/s",
            "TrainingJobStatus": status, "SecondaryStatus": extra.pop("secondary", status), "RoleArn": ROLE,
            "AlgorithmSpecification": {"TrainingInputMode": "File"}, "ResourceConfig": {"VolumeSizeInGB": 30},
            "StoppingCondition": {}, "CreationTime": "2026-11-24", "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m"},
            **extra}


def test_waiting_reports_each_status_and_a_failure_says_why():
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    notes: list[str] = []
    with Stubber(sagemaker) as stubber:
        for status, secondary in (("InProgress", "Starting"), ("InProgress", "Starting"), ("InProgress", "Training"),
                                  ("Failed", "Failed")):
            stubber.add_response("describe_training_job", described_job(status, secondary=secondary,
                                                                        FailureReason="AlgorithmError: boom"),
                                 {"TrainingJobName": "scones-test"})
        with pytest.raises(sagemaker_jobs.TrainingJobFailedError, match="training job scones-test failed: "
                                                                        "AlgorithmError: boom"):
            sagemaker_jobs.wait_for_training(sagemaker, "scones-test", poll_seconds=0, announce=notes.append)
    assert notes == ["scones-test: InProgress / Starting", "scones-test: InProgress / Training",
                     "scones-test: Failed / Failed"]


def test_no_role_says_how_to_give_one():
    with pytest.raises(sagemaker_jobs.SageMakerSetupError, match="pass --role .* or set SAGEMAKER_ROLE_ARN"):
        sagemaker_jobs.resolve_role(None)


def test_quota_errors_say_what_to_do():
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": "limit is 0"}}, "CreateTrainingJob")
    explained = sagemaker_jobs.explain_client_error(error, "ml.m5.xlarge")
    assert isinstance(explained, sagemaker_jobs.SageMakerSetupError)
    assert "service quota reached for ml.m5.xlarge: limit is 0" in str(explained)


@pytest.fixture
def published(aws, tiny_model, tmp_path) -> hosting.ModelToServe:
    archive = hosting.local_archive(resolve_model(tiny_model, tmp_path), tmp_path)
    return hosting.publish(aws.client("s3"), archive, BUCKET)


def test_a_model_folder_is_packaged_and_uploaded_under_its_archives_bytes(aws, published, tmp_path):
    digest = published.archive_sha256
    assert published.archive_uri == f"s3://{BUCKET}/models/archives/sha256-{digest}/model.tar.gz"
    head = aws.client("s3").head_object(Bucket=BUCKET, Key=f"models/archives/sha256-{digest}/model.tar.gz")
    assert head["Metadata"] == {"archive-sha256": digest, "model-sha256": published.sha256}
    again = resolve_model(published.archive_uri, tmp_path / "again", s3=aws.client("s3"))
    assert (again.sha256, again.archive_sha256) == (published.sha256, digest)


def archive_with(model_dir: Path, out: Path, **replaced: bytes) -> Path:
    """The archive `package` writes for `model_dir`, with some members' bytes replaced (code/, baseline, ...)."""
    import tarfile

    from common.model_archive import write_tar_gz
    from data_prep.packaging import package_model

    packaged = package_model(model_dir, out.with_name("original.tar.gz"))
    with tarfile.open(packaged.archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    write_tar_gz({**files, **replaced}.items(), out)
    return out


def test_two_archives_of_one_model_never_share_or_overwrite_an_s3_object(aws, tiny_model, tmp_path):
    """Same model.onnx, other code/: before, both went to models/sha256-<model>/ and the second replaced the first
    behind a live endpoint. Now each is under its own sha256, and a key holding other bytes is never written."""
    s3 = aws.client("s3")
    first = hosting.publish(s3, hosting.local_archive(resolve_model(tiny_model, tmp_path / "a"), tmp_path / "a"),
                            BUCKET)
    edited = archive_with(tiny_model, tmp_path / "b" / "model.tar.gz", **{"code/inference.py": b"# edited\n"})
    second = hosting.publish(s3, hosting.local_archive(resolve_model(edited, tmp_path / "b"), tmp_path / "b"), BUCKET)
    assert first.sha256 == second.sha256 and first.archive_sha256 != second.archive_sha256
    assert first.archive_uri != second.archive_uri
    for serving in (first, second):  # each object still holds exactly the bytes its key names
        key = serving.archive_uri.removeprefix(f"s3://{BUCKET}/")
        assert hashlib.sha256(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).hexdigest() == \
            serving.archive_sha256
    again = hosting.publish(s3, hosting.local_archive(resolve_model(tiny_model, tmp_path / "c"), tmp_path / "c"),
                            BUCKET, announce=(said := []).append)
    assert again == first and said[0].startswith("already in S3, the same bytes:")
    squatted = hosting.archive_key("0" * 64)  # a key whose bytes are not its name: an error, and left as it is
    s3.put_object(Bucket=BUCKET, Key=squatted, Body=b"other bytes")
    forged = hosting.LocalArchive(first.model, Path(tmp_path / "a" / "package" / "model.tar.gz"), "0" * 64)
    with pytest.raises(hosting.ArchiveConflictError, match=f"s3://{BUCKET}/{squatted} holds bytes with sha256 "
                                                           f"{hashlib.sha256(b'other bytes').hexdigest()[:12]}"):
        hosting.publish(s3, forged, BUCKET)
    assert s3.get_object(Bucket=BUCKET, Key=squatted)["Body"].read() == b"other bytes"
    assert hosting.ArchiveConflictError("x").exit_status == 3  # the bucket's state is wrong, not the input


def test_an_s3_archive_is_copied_to_its_content_addressed_key_from_the_checked_bytes(aws, tiny_model, tmp_path):
    from data_prep.packaging import package_model

    s3 = aws.client("s3")
    packaged = package_model(tiny_model, tmp_path / "model.tar.gz")
    s3.upload_file(str(packaged.archive), BUCKET, "somewhere/model.tar.gz")
    model = resolve_model(f"s3://{BUCKET}/somewhere/model.tar.gz", tmp_path / "read", s3=s3)
    archive = hosting.local_archive(model, tmp_path / "read")
    s3.put_object(Bucket=BUCKET, Key="somewhere/model.tar.gz", Body=b"replaced after it was checked")
    serving = hosting.publish(s3, archive, BUCKET)
    assert serving.archive_uri == f"s3://{BUCKET}/{hosting.archive_key(packaged.archive_sha256)}"
    key = serving.archive_uri.removeprefix(f"s3://{BUCKET}/")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == packaged.archive.read_bytes()


def model_request(published: hosting.ModelToServe) -> dict:
    sha = published.sha256
    return {
        "ModelName": f"{ENDPOINT}-{published.archive_sha256[:12]}", "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {"Image": INFERENCE_IMAGE, "ModelDataUrl": published.archive_uri, "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-east-1",
            "SCONES_MODEL_SHA256": sha, "SCONES_ARCHIVE_SHA256": published.archive_sha256,
            "SCONES_MODEL_VERSION": f"sha256-{sha[:12]}"}},
        "Tags": [{"Key": "scones:model-sha256", "Value": sha},
                 {"Key": "scones:archive-sha256", "Value": published.archive_sha256},
                 {"Key": "scones:model-version", "Value": f"sha256-{sha[:12]}"}]}


CAPTURE = {"EnableCapture": True, "InitialSamplingPercentage": 100,
           "DestinationS3Uri": f"s3://{BUCKET}/data_capture",
           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
           "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}


def endpoint(status: str, config: str = "cfg") -> dict:
    return {"EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:us-east-1:1:endpoint/{ENDPOINT}",
            "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": "2026-11-24",
            "LastModifiedTime": "2026-11-24"}


def test_deploy_new_creates_the_model_with_its_sha256_and_captures_everything(published):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    request = hosting.create_model_request(hosting.model_name_for(ENDPOINT, published.archive_sha256), ROLE,
                                           INFERENCE_IMAGE, published, "us-east-1")
    assert request == model_request(published)
    name = request["ModelName"]
    with Stubber(sagemaker) as stubber:
        stubber.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint", 400,
                                 expected_params={"EndpointName": ENDPOINT})
        stubber.add_client_error("describe_model", "ValidationException", "Could not find model", 400,
                                 expected_params={"ModelName": name})
        stubber.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"}, request)
        stubber.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:ec/c"}, {
            "EndpointConfigName": "cfg",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": name, "InitialVariantWeight": 1.0,
                                    "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}],
            "DataCaptureConfig": CAPTURE})
        stubber.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/e"},
                             {"EndpointName": ENDPOINT, "EndpointConfigName": "cfg", "Tags": request["Tags"]})
        stubber.add_response("describe_endpoint", endpoint("Creating"), {"EndpointName": ENDPOINT})
        stubber.add_response("describe_endpoint", endpoint("InService"), {"EndpointName": ENDPOINT})
        hosting.deploy_new(sagemaker, ENDPOINT, request, hosting.Hosting(instance_count=2), BUCKET, poll_seconds=0,
                           config_name="cfg")
        stubber.assert_no_pending_responses()


def test_serverless_sets_memory_and_concurrency_and_no_instances_or_capture(published):
    config = hosting.endpoint_config_request("cfg", "m", hosting.Hosting(
        serverless=hosting.Serverless(memory_mb=3072, max_concurrency=8), capture=False), BUCKET)
    assert config == {"EndpointConfigName": "cfg", "ProductionVariants": [{
        "VariantName": "AllTraffic", "ModelName": "m", "InitialVariantWeight": 1.0,
        "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 8}}]}


def test_an_existing_endpoint_or_serverless_capture_is_refused_before_anything_is_created(published):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    request = model_request(published)
    with Stubber(sagemaker) as stubber:
        stubber.add_response("describe_endpoint", endpoint("InService"), {"EndpointName": ENDPOINT})
        with pytest.raises(hosting.SageMakerSetupError, match="exists: roll the model out to it with "
                                                              "`.venv/bin/python -m data_prep deploy update`"):
            hosting.deploy_new(sagemaker, ENDPOINT, request, hosting.Hosting(), BUCKET)
        with pytest.raises(hosting.SageMakerSetupError, match="does not support data capture.*--no-capture"):
            hosting.deploy_new(sagemaker, ENDPOINT, request, hosting.Hosting(serverless=hosting.Serverless()), BUCKET)
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize("differs", ["model", "archive", "url"])
def test_a_model_name_serving_other_bytes_is_not_reused(published, differs):
    """The same model.onnx in another archive (or another object) is other bytes: SageMaker reads ModelDataUrl
    whenever an instance starts."""
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    request = model_request(published)
    container = {"ModelDataUrl": published.archive_uri, "Environment": {
        "SCONES_MODEL_SHA256": published.sha256, "SCONES_ARCHIVE_SHA256": published.archive_sha256}}
    key, value = {"model": ("SCONES_MODEL_SHA256", "f" * 64), "archive": ("SCONES_ARCHIVE_SHA256", "f" * 64),
                  "url": ("ModelDataUrl", "s3://b/models/sha256-0123456789ab/model.tar.gz")}[differs]
    if key == "ModelDataUrl":
        container[key] = value
    else:
        container["Environment"][key] = value
    with Stubber(sagemaker) as stubber:
        stubber.add_response("describe_model", {
            "ModelName": request["ModelName"], "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m",
            "CreationTime": "2026-11-24", "PrimaryContainer": container}, {"ModelName": request["ModelName"]})
        name = {"model": "model_sha256", "archive": "archive_sha256", "url": "model_data_url"}[differs]
        with pytest.raises(hosting.SageMakerSetupError, match=f"serves {name} '{value}', not "):
            hosting.ensure_model(sagemaker, request)
    with Stubber(sagemaker) as stubber:  # the same bytes: reused, nothing created
        stubber.add_response("describe_model", {
            "ModelName": request["ModelName"], "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m",
            "CreationTime": "2026-11-24", "PrimaryContainer": request["PrimaryContainer"]},
            {"ModelName": request["ModelName"]})
        assert hosting.ensure_model(sagemaker, request) == request["ModelName"]
        stubber.assert_no_pending_responses()


def test_which_bytes_an_endpoint_serves_is_read_back_from_its_model(published):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sagemaker) as stubber:
        stubber.add_response("describe_endpoint", endpoint("InService", "cfg"), {"EndpointName": ENDPOINT})
        stubber.add_response("describe_endpoint_config", {
            "EndpointConfigName": "cfg", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:ec/c",
            "CreationTime": "2026-11-24",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}]}, {"EndpointConfigName": "cfg"})
        stubber.add_response("describe_model", {
            "ModelName": "m", "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m", "CreationTime": "2026-11-24",
            "PrimaryContainer": {"Environment": {"SCONES_MODEL_SHA256": published.sha256}}}, {"ModelName": "m"})
        assert hosting.served_sha256(sagemaker, ENDPOINT) == {"AllTraffic": published.sha256}


def test_autoscaling_tracks_invocations_per_instance():
    client = boto3.client("application-autoscaling", region_name="us-east-1")
    resource = "endpoint/scones/variant/AllTraffic"
    with Stubber(client) as stubber:
        stubber.add_response("register_scalable_target", {}, {
            "ServiceNamespace": "sagemaker", "ResourceId": resource,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 1, "MaxCapacity": 4})
        stubber.add_response("put_scaling_policy", {"PolicyARN": "arn"}, {
            "PolicyName": "scones-invocations-per-instance", "ServiceNamespace": "sagemaker", "ResourceId": resource,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 500.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": 300, "ScaleOutCooldown": 60}})
        hosting.enable_autoscaling(client, "scones", min_instances=1, max_instances=4, invocations_per_instance=500.0)


@pytest.mark.parametrize("memory,concurrency,message", [(512, 5, "memory must be one of"),
                                                         (2048, 201, "max concurrency must be 1..200")])
def test_serverless_limits_are_checked_locally(memory, concurrency, message):
    with pytest.raises(hosting.SageMakerSetupError, match=message):
        hosting.Serverless(memory_mb=memory, max_concurrency=concurrency)


def test_samconfig_gets_the_endpoint_bucket_and_model_version(tmp_path: Path):
    config = tmp_path / "samconfig.toml"
    config.write_text('parameter_overrides = "EndpointName=\\"old\\" DataBucketName=\\"\\" '
                      'ModelVersion=\\"unversioned\\""\n')
    hosting.update_samconfig(config, "e", "b", model_version="sha256-0123456789ab")
    assert config.read_text() == ('parameter_overrides = "EndpointName=\\"e\\" DataBucketName=\\"b\\" '
                                  'ModelVersion=\\"sha256-0123456789ab\\""\n')


def test_a_weights_file_is_uploaded_and_passed_as_the_weights_channel(aws, staged, tmp_path):
    """`train sagemaker --weights FILE`: the file goes next to the job's source and reaches the entry point as
    SM_CHANNEL_WEIGHTS (the `weights` channel), where the container cannot download it."""
    weights = tmp_path / "resnet18-f37072fd.pth"
    weights.write_bytes(b"state dict bytes")
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    expected_uri = f"s3://{BUCKET}/models/scones-test/weights/"
    with Stubber(sagemaker) as stubber:
        stubber.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/s"},
                             {"TrainingJobName": "scones-test", "RoleArn": ROLE, "AlgorithmSpecification": ANY,
                              "HyperParameters": ANY, "InputDataConfig": [
                                  {"ChannelName": "train", "DataSource": {"S3DataSource": {
                                      "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{PREFIX}/",
                                      "S3DataDistributionType": "FullyReplicated"}}},
                                  {"ChannelName": "weights", "DataSource": {"S3DataSource": {
                                      "S3DataType": "S3Prefix", "S3Uri": expected_uri,
                                      "S3DataDistributionType": "FullyReplicated"}}}],
                              "OutputDataConfig": ANY, "ResourceConfig": ANY, "StoppingCondition": ANY,
                              "EnableManagedSpotTraining": False, "Tags": ANY})
        sagemaker_jobs.start_training(sagemaker, aws.client("s3"), job(staged, weights=weights), TRAINING_IMAGE)
        stubber.assert_no_pending_responses()
    listed = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="models/scones-test/weights/")["Contents"]
    assert [item["Key"] for item in listed] == ["models/scones-test/weights/resnet18-f37072fd.pth"]
    assert aws.client("s3").get_object(Bucket=BUCKET, Key=listed[0]["Key"])["Body"].read() == b"state dict bytes"
