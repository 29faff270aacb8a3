"""SageMaker: train the built-in image-classification algorithm on the staged data, deploy it with capture.

Uses the sagemaker SDK 2.x (3.x removed Estimator). Everything that can fail for a predictable reason
(no role, nothing staged, a service quota) fails before or at the call with a message that says what
to do.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from common.artefacts import DATASET_FILE, parse_dataset_description
from common.settings import DEFAULT_VARIANT
from data_prep.errors import DataPrepError

HYPERPARAMETERS_FILE = Path(__file__).with_name("image_classification.json")
ALGORITHM = "image-classification"
CONTENT_TYPE = "application/x-image"


class SageMakerSetupError(DataPrepError):
    """Something the job needs is missing: a role, the staged data, quota. The message says what to do."""


@dataclass(frozen=True)
class StagedData:
    bucket: str
    prefix: str

    def uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{name}"


def load_hyperparameters(path: Path, staged_counts: dict[str, int]) -> dict[str, str]:
    """The config file's values plus num_classes / num_training_samples measured from the staged .lst."""
    values = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    values["num_classes"] = staged_counts["num_classes"]
    values["num_training_samples"] = staged_counts["num_training_samples"]
    return {key: str(value) for key, value in values.items()}


def staged_counts(s3: Any, staged: StagedData) -> dict[str, int]:
    """Read the staged train.lst and dataset.json; refuse clearly when they are not there."""
    try:
        lst = s3.get_object(Bucket=staged.bucket, Key=f"{staged.prefix}/train.lst")["Body"].read().decode()
        s3.head_object(Bucket=staged.bucket, Key=f"{staged.prefix}/test.lst")
        dataset = parse_dataset_description(
            s3.get_object(Bucket=staged.bucket, Key=f"{staged.prefix}/{DATASET_FILE}")["Body"].read().decode())
    except ClientError as error:
        raise SageMakerSetupError(
            f"no staged dataset at s3://{staged.bucket}/{staged.prefix}/ ({error.response['Error']['Code']}): "
            "run `python -m data_prep all` (or `stage`) first") from error
    return {"num_classes": len(dataset["class_names"]),
            "num_training_samples": sum(1 for line in lst.splitlines() if line.strip())}


def resolve_role(role: str | None) -> str:
    if role:
        return role
    try:
        import sagemaker

        return str(sagemaker.get_execution_role())
    except (ValueError, ClientError) as error:
        raise SageMakerSetupError(
            "no SageMaker execution role: pass --role arn:aws:iam::<account>:role/<role> (a role SageMaker can "
            "assume with access to the bucket) or set SAGEMAKER_ROLE_ARN") from error


def channels(staged: StagedData) -> dict[str, Any]:
    from sagemaker.inputs import TrainingInput

    return {
        "train": TrainingInput(staged.uri("train/"), content_type=CONTENT_TYPE),
        "validation": TrainingInput(staged.uri("test/"), content_type=CONTENT_TYPE),
        "train_lst": TrainingInput(staged.uri("train.lst"), content_type=CONTENT_TYPE),
        "validation_lst": TrainingInput(staged.uri("test.lst"), content_type=CONTENT_TYPE),
    }


def explain_client_error(error: ClientError, instance_type: str) -> SageMakerSetupError | ClientError:
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ResourceLimitExceeded":
        return SageMakerSetupError(
            f"service quota reached for {instance_type}: {error.response['Error'].get('Message', '')}. "
            "Request an increase in Service Quotas, or pass --instance-type with one you have quota for "
            "(ml.m5.xlarge works for this small dataset, slowly)")
    return error


def train(session: Any, role: str, staged: StagedData, *, instance_type: str = "ml.p3.2xlarge",
          instance_count: int = 1, spot: bool = False, max_run_seconds: int = 3600,
          hyperparameters_path: Path = HYPERPARAMETERS_FILE, job_name: str | None = None,
          logs: bool = True) -> str:
    """Run the training job (streaming its logs when `logs`); return the job name."""
    from sagemaker import image_uris
    from sagemaker.estimator import Estimator

    counts = staged_counts(session.boto_session.client("s3"), staged)
    hyperparameters: dict[str, Any] = load_hyperparameters(hyperparameters_path, counts)
    estimator = Estimator(
        image_uri=image_uris.retrieve(ALGORITHM, session.boto_region_name),
        role=role, instance_count=instance_count, instance_type=instance_type,
        output_path=staged.uri("model"), sagemaker_session=session, hyperparameters=hyperparameters,
        input_mode="File", max_run=max_run_seconds, use_spot_instances=spot,
        max_wait=max_run_seconds * 2 if spot else None,
    )
    name = job_name or f"scones-image-classification-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        estimator.fit(channels(staged), job_name=name, wait=True, logs="All" if logs else "None")
    except ClientError as error:
        raise explain_client_error(error, instance_type) from error
    return name


def data_capture_config(bucket: str, sampling_percentage: int = 100) -> Any:
    from sagemaker.model_monitor import DataCaptureConfig

    return DataCaptureConfig(enable_capture=True, sampling_percentage=sampling_percentage,
                             destination_s3_uri=f"s3://{bucket}/data_capture",
                             capture_options=["REQUEST", "RESPONSE"])


def deploy(session: Any, training_job: str, endpoint_name: str, bucket: str, *,
           instance_type: str = "ml.m5.large", instance_count: int = 1, wait: bool = True) -> str:
    """Deploy the job's model artifact with data capture of every request and response."""
    from sagemaker import image_uris
    from sagemaker.model import Model

    job = session.sagemaker_client.describe_training_job(TrainingJobName=training_job)
    if job["TrainingJobStatus"] != "Completed":
        raise SageMakerSetupError(f"training job {training_job} is {job['TrainingJobStatus']}, not Completed")
    model = Model(image_uri=image_uris.retrieve(ALGORITHM, session.boto_region_name),
                  model_data=job["ModelArtifacts"]["S3ModelArtifacts"], role=job["RoleArn"],
                  sagemaker_session=session, name=f"{endpoint_name}-{training_job}"[:63])
    try:
        model.deploy(initial_instance_count=instance_count, instance_type=instance_type,
                     endpoint_name=endpoint_name, data_capture_config=data_capture_config(bucket), wait=wait)
    except ClientError as error:
        raise explain_client_error(error, instance_type) from error
    return endpoint_name


def enable_autoscaling(autoscaling: Any, endpoint_name: str, *, min_instances: int, max_instances: int,
                       invocations_per_instance: float, variant: str = DEFAULT_VARIANT) -> None:
    """Target tracking on SageMakerVariantInvocationsPerInstance (invocations per instance per minute)."""
    resource_id = f"endpoint/{endpoint_name}/variant/{variant}"
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=min_instances, MaxCapacity=max_instances,
    )
    autoscaling.put_scaling_policy(
        PolicyName=f"{endpoint_name}-invocations-per-instance", ServiceNamespace="sagemaker",
        ResourceId=resource_id, ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": invocations_per_instance,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": 300, "ScaleOutCooldown": 60,
        },
    )


def sam_deploy_command(endpoint_name: str, bucket: str) -> str:
    return (f'sam build && sam deploy --parameter-overrides EndpointName="{endpoint_name}" '
            f'DataBucketName="{bucket}"')


def update_samconfig(path: Path, endpoint_name: str, bucket: str) -> None:
    """Set EndpointName and DataBucketName in every parameter_overrides line of samconfig.toml."""
    text = path.read_text()
    for name, value in (("EndpointName", endpoint_name), ("DataBucketName", bucket)):
        text = re.sub(rf'{name}=\\"[^"\\]*\\"', f'{name}=\\\\"{value}\\\\"', text)
    path.write_text(text)
