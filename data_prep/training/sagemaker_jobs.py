"""SageMaker training: a PyTorch framework job in script mode that runs this project's own trainer.

`data_prep train sagemaker` makes the same request the SageMaker Python SDK's PyTorch estimator makes for
script mode (sagemaker-python-sdk v2, `Framework._script_mode_hyperparam_update` and
`fw_utils.tar_and_upload_dir`), through a boto3 client of the project's session, so AWS_ENDPOINT_URL and
profile endpoints are honoured and no SDK logging or telemetry is involved:
- the source directory (data_prep.packaging.training_source) is uploaded as
  `s3://BUCKET/models/JOB/source/sourcedir.tar.gz`;
- every hyperparameter is JSON-encoded (the SDK's `_json_encode_hyperparameters`; the container's
  sagemaker-training decodes them), and script mode adds `sagemaker_program` (the entry point inside the
  tarball), `sagemaker_submit_directory` (the tarball's S3 URI), `sagemaker_container_log_level`,
  `sagemaker_job_name` and `sagemaker_region`;
- channel `train` is the staged dataset (S3Prefix, File mode), `labels` (optional) the reviewed labels' prefix,
  `weights` (with --weights) the transfer preset's weights file, uploaded to s3://BUCKET/models/JOB/weights/;
- the job writes `s3://BUCKET/models/JOB/output/model.tar.gz`: the archive `data_prep package` writes.

The container is SageMaker's PyTorch training image (PYTORCH_VERSION, PYTHON_VERSION: the newest the SDK's
image_uris configuration lists), CPU by default: ml.m5.xlarge, 4 vCPUs = 2 physical cores, the two threads
the trainer uses (TrainConfig.threads) and the two cores its times were measured on, 16 GiB (training takes
well under 2), and the instance type SageMaker's free tier covers for training.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from common.artefacts import DATASET_FILE, parse_dataset_description
from common.errors import EnvironmentProblem
from common.model_archive import TRAINER_HYPERPARAMETER, TRAINER_NAME, TRAINER_TAG
from data_prep.errors import DataPrepError
from data_prep.training.config import TrainConfig, as_hyperparameters

PYTORCH_VERSION = "2.8.0"  # SageMaker's PyTorch training container (image_uris config: pytorch, training)
PYTHON_VERSION = "py312"
DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
MODELS_PREFIX = "models"  # s3://BUCKET/models/JOB/{source/sourcedir.tar.gz, output/model.tar.gz}
SOURCE_ARCHIVE = "sourcedir.tar.gz"  # the SDK's name for the script-mode source tarball
CONTAINER_LOG_LEVEL = logging.INFO
VOLUME_GB = 30  # the SDK's default training volume
ROLE_ENV = "SAGEMAKER_ROLE_ARN"
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})


class SageMakerSetupError(DataPrepError):
    """Something the job needs is missing: a role, the staged data, quota. The message says what to do."""


class TrainingJobFailedError(EnvironmentProblem):
    """The training job ended Failed or Stopped: SageMaker's reason is in the message (exit 3)."""


@dataclass(frozen=True)
class StagedData:
    bucket: str
    prefix: str

    def uri(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}/{name}"


def container_image(region: str, scope: str, version: str, py_version: str, instance_type: str) -> str:
    """The PyTorch container's image URI from the SageMaker SDK's offline configuration (no AWS call), the SDK
    loaded and run quietly (common.sagemaker_sdk: the project's one way into the SDK)."""
    from common import sagemaker_sdk

    with sagemaker_sdk.quiet():
        from sagemaker import image_uris

        return str(image_uris.retrieve("pytorch", region, version=version, py_version=py_version,
                                       instance_type=instance_type, image_scope=scope))


def training_image(region: str, instance_type: str = DEFAULT_INSTANCE_TYPE) -> str:
    return container_image(region, "training", PYTORCH_VERSION, PYTHON_VERSION, instance_type)


def staged_classes(s3: Any, staged: StagedData) -> list[str]:
    """The staged dataset's class names, after checking its .lst files are there (refused clearly if not)."""
    try:
        s3.get_object(Bucket=staged.bucket, Key=f"{staged.prefix}/train.lst")["Body"].close()  # a refusal says why
        s3.head_object(Bucket=staged.bucket, Key=f"{staged.prefix}/test.lst")
        dataset = parse_dataset_description(
            s3.get_object(Bucket=staged.bucket, Key=f"{staged.prefix}/{DATASET_FILE}")["Body"].read().decode())
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code not in {"NoSuchKey", "404", "NoSuchBucket"}:
            raise  # access denied, expired credentials, throttling: the CLI runner says so, not "nothing staged"
        raise SageMakerSetupError(
            f"no staged dataset at {staged.uri()} ({code}): run `.venv/bin/python -m data_prep all` (or `stage`) "
            "first") from error
    return [str(name) for name in dataset["class_names"]]


def resolve_role(role: str | None) -> str:
    if role:
        return role
    raise SageMakerSetupError(
        "no SageMaker execution role: pass --role arn:aws:iam::<account>:role/<role> (a role SageMaker can "
        f"assume with access to the bucket) or set {ROLE_ENV}")


@dataclass(frozen=True)
class TrainingJob:
    """What one training job runs: the trainer's options, where its data is, the instance."""

    name: str
    role: str
    region: str
    staged: StagedData
    config: TrainConfig
    threshold: float
    classes: list[str] | None = None
    validation_fraction: float = 0.2
    labels: str | None = None  # s3:// prefix of Ground Truth manifests
    weights: Path | None = None  # --preset transfer: a local weights file, uploaded beside the source (`weights`)
    instance_type: str = DEFAULT_INSTANCE_TYPE
    spot: bool = False
    max_run_seconds: int = 3600
    extra_tags: dict[str, str] = field(default_factory=dict)

    @property
    def source_uri(self) -> str:
        return f"s3://{self.staged.bucket}/{MODELS_PREFIX}/{self.name}/source/{SOURCE_ARCHIVE}"

    @property
    def output_path(self) -> str:
        return f"s3://{self.staged.bucket}/{MODELS_PREFIX}"

    @property
    def artifact_uri(self) -> str:
        """Where SageMaker writes the job's model.tar.gz (OutputDataConfig.S3OutputPath/JOB/output/)."""
        return f"{self.output_path}/{self.name}/output/model.tar.gz"

    @property
    def weights_uri(self) -> str:
        """The `weights` channel: the job's entry point reads it as SM_CHANNEL_WEIGHTS instead of downloading."""
        return f"s3://{self.staged.bucket}/{MODELS_PREFIX}/{self.name}/weights/"

    def hyperparameters(self) -> dict[str, str]:
        """The trainer's options and script mode's own, each JSON-encoded as the SDK sends them."""
        from data_prep.packaging import TRAINING_PROGRAM

        ours: dict[str, Any] = {**as_hyperparameters(self.config), "threshold": str(self.threshold),
                                "validation_fraction": str(self.validation_fraction),
                                TRAINER_HYPERPARAMETER: TRAINER_NAME}
        if self.classes:
            ours["classes"] = ",".join(self.classes)
        script_mode = {"sagemaker_program": TRAINING_PROGRAM, "sagemaker_submit_directory": self.source_uri,
                       "sagemaker_container_log_level": CONTAINER_LOG_LEVEL, "sagemaker_job_name": self.name,
                       "sagemaker_region": self.region}
        return {key: json.dumps(value) for key, value in {**ours, **script_mode}.items()}

    def request(self, image_uri: str) -> dict[str, Any]:
        """The CreateTrainingJob request."""
        channels = [("train", self.staged.uri())] + ([("labels", self.labels.rstrip("/") + "/")] if self.labels
                                                     else [])
        if self.weights is not None:
            channels.append(("weights", self.weights_uri))
        stopping: dict[str, int] = {"MaxRuntimeInSeconds": self.max_run_seconds}
        if self.spot:
            stopping["MaxWaitTimeInSeconds"] = 2 * self.max_run_seconds
        tags = {TRAINER_TAG: TRAINER_NAME, **self.extra_tags}
        return {
            "TrainingJobName": self.name,
            "RoleArn": self.role,
            "AlgorithmSpecification": {"TrainingImage": image_uri, "TrainingInputMode": "File"},
            "HyperParameters": self.hyperparameters(),
            "InputDataConfig": [{"ChannelName": name, "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
                for name, uri in channels],
            "OutputDataConfig": {"S3OutputPath": self.output_path},
            "ResourceConfig": {"InstanceType": self.instance_type, "InstanceCount": 1, "VolumeSizeInGB": VOLUME_GB},
            "StoppingCondition": stopping,
            "EnableManagedSpotTraining": self.spot,
            "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        }


def explain_client_error(error: ClientError, instance_type: str) -> SageMakerSetupError | ClientError:
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ResourceLimitExceeded":
        return SageMakerSetupError(
            f"service quota reached for {instance_type}: {error.response['Error'].get('Message', '')}. "
            "Request an increase in Service Quotas, or pass --instance-type with one you have quota for")
    return error


def start_training(sagemaker: Any, s3: Any, job: TrainingJob, image_uri: str,
                   announce: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Check the staged data, upload the source directory and create the job; returns the request made."""
    from data_prep.packaging import write_training_source

    say = announce or (lambda message: None)
    staged_classes(s3, job.staged)  # nothing staged: refused before anything is uploaded or created
    with tempfile.TemporaryDirectory(prefix="scones-source-") as scratch:
        archive = Path(scratch) / SOURCE_ARCHIVE
        digest = write_training_source(archive)
        bucket, key = job.source_uri[len("s3://"):].split("/", 1)
        s3.upload_file(str(archive), bucket, key)
    say(f"source: {job.source_uri} (sha256 {digest[:12]}...)")
    if job.weights is not None:
        bucket, key = job.weights_uri[len("s3://"):].split("/", 1)
        s3.upload_file(str(job.weights), bucket, key + job.weights.name)
        say(f"weights: {job.weights_uri}{job.weights.name}")
    request = job.request(image_uri)
    request["Tags"].append({"Key": "scones:source-sha256", "Value": digest})
    try:
        sagemaker.create_training_job(**request)
    except ClientError as error:
        raise explain_client_error(error, job.instance_type) from error
    say(f"training job {job.name} created on {job.instance_type} ({image_uri})")
    return request


def wait_for_training(sagemaker: Any, name: str, *, poll_seconds: float = 30.0,
                      announce: Callable[[str], None] | None = None) -> dict[str, Any]:
    """DescribeTrainingJob until the job ends, saying each new secondary status; the Completed description,
    else TrainingJobFailedError with SageMaker's FailureReason."""
    say = announce or (lambda message: None)
    last = ""
    while True:
        described: dict[str, Any] = sagemaker.describe_training_job(TrainingJobName=name)
        status = f"{described['TrainingJobStatus']} / {described.get('SecondaryStatus', '')}"
        if status != last:
            say(f"{name}: {status}")
            last = status
        if described["TrainingJobStatus"] in TERMINAL_STATUSES:
            break
        time.sleep(poll_seconds)
    if described["TrainingJobStatus"] != "Completed":
        reason = described.get("FailureReason", "no reason given")
        raise TrainingJobFailedError(f"training job {name} {described['TrainingJobStatus'].lower()}: {reason} "
                                     f"(logs: CloudWatch /aws/sagemaker/TrainingJobs, stream {name}/...)")
    return described
