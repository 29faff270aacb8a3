"""The SageMaker path against moto: the exact CreateTrainingJob and CreateEndpointConfig requests."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from data_prep.training import sagemaker_jobs

BUCKET = "scones-data"
PREFIX = "scones-image-classification"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


@pytest.fixture
def aws(monkeypatch):
    import sagemaker.session

    # moto finishes jobs and endpoints at once; the SDK's polling sleeps (5-30 s) would only slow the suite.
    monkeypatch.setattr(sagemaker.session.time, "sleep", lambda seconds: None)
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        s3 = session.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        yield session


@pytest.fixture
def staged(aws):
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/train.lst", Body=b"0\t0\ta.png\n1\t1\tb.png\n2\t1\tc.png\n")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/test.lst", Body=b"0\t0\td.png\n")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dataset.json",
                  Body=json.dumps({"class_names": ["bicycle", "motorcycle"]}).encode())
    return sagemaker_jobs.StagedData(BUCKET, PREFIX)


def recorded(session: boto3.Session, operation: str) -> list[dict]:
    calls: list[dict] = []
    session.events.register(f"provide-client-params.sagemaker.{operation}",
                            lambda params, **kwargs: calls.append(json.loads(json.dumps(params, default=str))))
    return calls


def sagemaker_session(session: boto3.Session):
    import sagemaker

    return sagemaker.Session(boto_session=session, default_bucket=BUCKET)


def test_training_job_request_has_tuned_hyperparameters_and_the_four_channels(aws, staged):
    calls = recorded(aws, "CreateTrainingJob")

    name = sagemaker_jobs.train(sagemaker_session(aws), ROLE, staged, job_name="scones-test", logs=False,
                                preset="scratch")

    (request,) = calls
    assert name == "scones-test"
    assert request["AlgorithmSpecification"]["TrainingImage"] == (
        "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1")
    assert request["HyperParameters"] == {
        "image_shape": "3,32,32", "num_layers": "20", "use_pretrained_model": "0", "epochs": "60",
        "mini_batch_size": "64", "optimizer": "sgd", "learning_rate": "0.1", "momentum": "0.9",
        "weight_decay": "0.0005", "lr_scheduler_step": "30,45", "lr_scheduler_factor": "0.1",
        "augmentation_type": "crop_color_transform", "early_stopping": "true", "early_stopping_min_epochs": "20",
        "early_stopping_patience": "10", "early_stopping_tolerance": "0.0", "precision_dtype": "float32",
        "num_classes": "2", "num_training_samples": "3",
    }
    channels = {c["ChannelName"]: (c["DataSource"]["S3DataSource"]["S3Uri"], c["ContentType"])
                for c in request["InputDataConfig"]}
    assert channels == {
        "train": (f"s3://{BUCKET}/{PREFIX}/train/", "application/x-image"),
        "validation": (f"s3://{BUCKET}/{PREFIX}/test/", "application/x-image"),
        "train_lst": (f"s3://{BUCKET}/{PREFIX}/train.lst", "application/x-image"),
        "validation_lst": (f"s3://{BUCKET}/{PREFIX}/test.lst", "application/x-image"),
    }
    assert request["ResourceConfig"]["InstanceType"] == "ml.p3.2xlarge"
    assert request["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/{PREFIX}/model"
    assert request["RoleArn"] == ROLE
    assert "EnableManagedSpotTraining" not in request


def test_spot_training_sets_a_wait_limit(aws, staged):
    calls = recorded(aws, "CreateTrainingJob")
    sagemaker_jobs.train(sagemaker_session(aws), ROLE, staged, job_name="spot", spot=True, max_run_seconds=1800,
                         logs=False)
    assert calls[0]["EnableManagedSpotTraining"] is True
    assert calls[0]["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}


def test_nothing_staged_says_to_stage_first(aws):
    with pytest.raises(sagemaker_jobs.SageMakerSetupError, match="run `.venv/bin/python -m data_prep all`"):
        sagemaker_jobs.train(sagemaker_session(aws), ROLE, sagemaker_jobs.StagedData(BUCKET, "empty"), logs=False)


def test_no_role_says_how_to_give_one(aws):
    with pytest.raises(sagemaker_jobs.SageMakerSetupError, match="pass --role"):
        sagemaker_jobs.resolve_role(None)


def test_quota_errors_say_what_to_do():
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": "limit is 0"}}, "CreateTrainingJob")
    explained = sagemaker_jobs.explain_client_error(error, "ml.p3.2xlarge")
    assert isinstance(explained, sagemaker_jobs.SageMakerSetupError)
    assert "service quota reached for ml.p3.2xlarge: limit is 0" in str(explained)


def test_deploy_captures_every_request_and_response(aws, staged):
    calls = recorded(aws, "CreateEndpointConfig")  # before the SDK creates its client
    session = sagemaker_session(aws)
    sagemaker_jobs.train(session, ROLE, staged, job_name="to-deploy", logs=False)

    sagemaker_jobs.deploy(session, "to-deploy", "scones-image-classifier", BUCKET, instance_count=2)

    (request,) = calls
    assert request["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{BUCKET}/data_capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
    }
    (variant,) = request["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 2)
    status = aws.client("sagemaker").describe_endpoint(EndpointName="scones-image-classifier")["EndpointStatus"]
    assert status == "InService"


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
        sagemaker_jobs.enable_autoscaling(client, "scones", min_instances=1, max_instances=4,
                                          invocations_per_instance=500.0)


def test_samconfig_is_updated_in_place(tmp_path):
    config = tmp_path / "samconfig.toml"
    config.write_text('parameter_overrides = "EndpointName=\\"old\\" ConfidenceThreshold=\\"0.93\\" '
                      'DataBucketName=\\"\\""\n')
    sagemaker_jobs.update_samconfig(config, "new-endpoint", "my-bucket")
    assert config.read_text() == ('parameter_overrides = "EndpointName=\\"new-endpoint\\" ConfidenceThreshold='
                                  '\\"0.93\\" DataBucketName=\\"my-bucket\\""\n')


def stage_lst(aws, lines: int, image_shape: list[int] | None = None) -> sagemaker_jobs.StagedData:
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/train.lst",
                  Body="".join(f"{i}\t{i % 2}\t{i}.png\n" for i in range(lines)).encode())
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/test.lst", Body=b"0\t0\td.png\n")
    description = {"class_names": ["bicycle", "motorcycle"], "image_shape": image_shape or [3, 32, 32]}
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dataset.json", Body=json.dumps(description).encode())
    return sagemaker_jobs.StagedData(BUCKET, PREFIX)


def test_the_default_preset_fine_tunes_a_pretrained_resnet_at_224_when_the_data_fits(aws):
    staged = stage_lst(aws, 800)
    calls = recorded(aws, "CreateTrainingJob")
    notes: list[str] = []

    sagemaker_jobs.train(sagemaker_session(aws), ROLE, staged, job_name="transfer", logs=False, announce=notes.append)

    (request,) = calls
    assert request["HyperParameters"] == {
        "use_pretrained_model": "1", "num_layers": "50", "image_shape": "3,224,224", "resize": "256",
        "epochs": "15", "mini_batch_size": "32", "optimizer": "sgd", "learning_rate": "0.01", "momentum": "0.9",
        "weight_decay": "0.0001", "lr_scheduler_step": "10", "lr_scheduler_factor": "0.1",
        "augmentation_type": "crop_color_transform", "early_stopping": "true", "early_stopping_min_epochs": "5",
        "early_stopping_patience": "3", "early_stopping_tolerance": "0.0", "precision_dtype": "float32",
        "num_classes": "2", "num_training_samples": "800",
    }
    assert request["ResourceConfig"]["InstanceType"] == "ml.p3.2xlarge"  # a GPU, as the algorithm's training wants
    assert notes == ["hyperparameters: the transfer preset (pretrained ResNet fits the staged data): "
                     "image_classification_transfer.json"]


def test_auto_trains_from_scratch_when_transfer_does_not_fit_and_says_why(aws):
    staged = stage_lst(aws, 800, image_shape=[1, 32, 32])
    calls = recorded(aws, "CreateTrainingJob")
    notes: list[str] = []

    sagemaker_jobs.train(sagemaker_session(aws), ROLE, staged, job_name="grey", logs=False, announce=notes.append)

    assert calls[0]["HyperParameters"]["image_shape"] == "3,32,32"
    assert calls[0]["HyperParameters"]["use_pretrained_model"] == "0"
    assert notes == ["hyperparameters: the scratch preset (transfer does not fit: the staged images have 1 channels;"
                     " pretrained networks take RGB): image_classification.json"]


def test_asking_for_transfer_on_data_it_cannot_train_on_is_refused_before_any_job(aws):
    staged = stage_lst(aws, 10)
    calls = recorded(aws, "CreateTrainingJob")
    with pytest.raises(sagemaker_jobs.SageMakerSetupError,
                       match="10 training images are fewer than one mini-batch \\(32\\)"):
        sagemaker_jobs.train(sagemaker_session(aws), ROLE, staged, job_name="x", logs=False, preset="transfer")
    assert calls == []


def test_the_transfer_preset_is_a_valid_pretrained_configuration():
    counts = {"num_classes": 2, "num_training_samples": 1000, "channels": 3}
    assert sagemaker_jobs.preset_problems(sagemaker_jobs.TRANSFER_HYPERPARAMETERS_FILE, counts) == []
    config = json.loads(sagemaker_jobs.TRANSFER_HYPERPARAMETERS_FILE.read_text())
    assert config["num_layers"] in (18, 34, 50, 101, 152, 200) and config["resize"] > 224


def test_serverless_deploy_sets_memory_and_concurrency_and_no_instances_or_capture(aws, staged):
    calls = recorded(aws, "CreateEndpointConfig")
    session = sagemaker_session(aws)
    sagemaker_jobs.train(session, ROLE, staged, job_name="to-deploy", logs=False)

    sagemaker_jobs.deploy(session, "to-deploy", "scones-serverless", BUCKET, capture=False,
                          serverless=sagemaker_jobs.Serverless(memory_mb=3072, max_concurrency=8))

    (request,) = calls
    (variant,) = request["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 8}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    assert "DataCaptureConfig" not in request


def test_serverless_with_capture_is_refused_before_anything_is_created(aws, staged):
    calls = recorded(aws, "CreateModel")
    with pytest.raises(sagemaker_jobs.SageMakerSetupError, match="does not support data capture.*--no-capture"):
        sagemaker_jobs.deploy(sagemaker_session(aws), "any-job", "scones", BUCKET,
                              serverless=sagemaker_jobs.Serverless())
    assert calls == []


@pytest.mark.parametrize("memory,concurrency,message", [(512, 5, "memory must be one of"),
                                                         (2500, 5, "memory must be one of"),
                                                         (2048, 0, "max concurrency must be 1..200"),
                                                         (2048, 201, "max concurrency must be 1..200")])
def test_serverless_limits_are_checked_locally(memory, concurrency, message):
    with pytest.raises(sagemaker_jobs.SageMakerSetupError, match=message):
        sagemaker_jobs.Serverless(memory_mb=memory, max_concurrency=concurrency)


def test_samconfig_gets_the_model_version(tmp_path):
    config = tmp_path / "samconfig.toml"
    config.write_text('parameter_overrides = "EndpointName=\\"old\\" DataBucketName=\\"\\" '
                      'ModelVersion=\\"unversioned\\""\n')
    sagemaker_jobs.update_samconfig(config, "e", "b", model_version="scones-image-classification-20260101-000000")
    assert config.read_text() == ('parameter_overrides = "EndpointName=\\"e\\" DataBucketName=\\"b\\" '
                                  'ModelVersion=\\"scones-image-classification-20260101-000000\\""\n')


def test_reviewed_labels_train_as_augmented_manifests_in_pipe_mode(aws, staged, tmp_path):
    from common.artefacts import GroundTruthLabel, ManifestRow, write_manifest
    from data_prep.dataset.transform import model_pixels
    from data_prep.training.reviewed import content_hash
    from testkit.images import png_bytes

    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="incoming/new.png", Body=png_bytes(seed=1))
    s3.put_object(Bucket=BUCKET, Key="incoming/known.png", Body=png_bytes(seed=2))
    known = content_hash(model_pixels(png_bytes(seed=2)))  # already staged as a training image
    write_manifest(tmp_path, [ManifestRow("train/a.png", "bicycle", 0, "train", known)])
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/manifest.csv", Body=(tmp_path / "manifest.csv").read_bytes())
    lines = [GroundTruthLabel(f"s3://{BUCKET}/incoming/new.png", "motorcycle", 1, "2026-11-24T10:00:00.000000"),
             GroundTruthLabel(f"s3://{BUCKET}/incoming/known.png", "bicycle", 0, "2026-11-24T10:00:00.000000")]
    s3.put_object(Bucket=BUCKET, Key="labels/exec-1.jsonl",
                  Body="".join(line.as_line() + "\n" for line in lines).encode())
    calls = recorded(aws, "CreateTrainingJob")

    sagemaker_jobs.train(sagemaker_session(aws), ROLE, staged, job_name="reviewed", logs=False, preset="scratch",
                         labels=f"s3://{BUCKET}/labels/")

    (request,) = calls
    base = f"s3://{BUCKET}/{PREFIX}/manifests/reviewed"

    def channel(name: str, manifest: str) -> dict:
        return {"ChannelName": name,
                "DataSource": {"S3DataSource": {"S3DataType": "AugmentedManifestFile", "S3Uri": f"{base}/{manifest}",
                                                "S3DataDistributionType": "FullyReplicated",
                                                "AttributeNames": ["source-ref", "vehicle-class"]}},
                "CompressionType": "None", "ContentType": "application/x-recordio", "RecordWrapperType": "RecordIO",
                "InputMode": "Pipe"}

    assert request["InputDataConfig"] == [channel("train", "train.manifest"),
                                          channel("validation", "validation.manifest")]
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    assert request["HyperParameters"]["num_training_samples"] == "4"  # 3 staged + 1 new reviewed image
    train_manifest = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/manifests/reviewed/train.manifest")["Body"].read()
    rows = [json.loads(line) for line in train_manifest.decode().splitlines()]
    new_key = f"{PREFIX}/reviewed/{content_hash(model_pixels(png_bytes(seed=1)))}.png"
    assert [(row["source-ref"], row["vehicle-class"]) for row in rows] == [
        (f"s3://{BUCKET}/{PREFIX}/train/a.png", 0), (f"s3://{BUCKET}/{PREFIX}/train/b.png", 1),
        (f"s3://{BUCKET}/{PREFIX}/train/c.png", 1), (f"s3://{BUCKET}/{new_key}", 1)]
    assert model_pixels(s3.get_object(Bucket=BUCKET, Key=new_key)["Body"].read()).tobytes() == \
        model_pixels(png_bytes(seed=1)).tobytes()
    validation = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/manifests/reviewed/validation.manifest")["Body"].read()
    assert [json.loads(line)["source-ref"] for line in validation.decode().splitlines()] == [
        f"s3://{BUCKET}/{PREFIX}/test/d.png"]
