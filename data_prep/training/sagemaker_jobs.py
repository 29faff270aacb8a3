"""SageMaker: train the built-in image-classification algorithm on the staged data, deploy it with capture.

Uses the sagemaker SDK 2.x (3.x removed Estimator). Everything that can fail for a predictable reason
(no role, nothing staged, a service quota) fails before or at the call with a message that says what
to do.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from PIL import Image

from common.artefacts import (
    DATASET_FILE,
    LABEL_ATTRIBUTE,
    MANIFEST_FILE,
    GroundTruthLabel,
    ground_truth_manifest,
    ground_truth_now,
    parse_dataset_description,
    parse_manifest,
)
from common.settings import DEFAULT_VARIANT, hint
from data_prep.errors import DataPrepError
from imaging.preprocess import encode_png

HYPERPARAMETERS_FILE = Path(__file__).with_name("image_classification.json")  # from scratch, 32x32
TRANSFER_HYPERPARAMETERS_FILE = Path(__file__).with_name("image_classification_transfer.json")
PRESETS = {"transfer": TRANSFER_HYPERPARAMETERS_FILE, "scratch": HYPERPARAMETERS_FILE}
PRETRAINED_DEPTHS = (18, 34, 50, 101, 152, 200)  # the ImageNet networks use_pretrained_model=1 can load
PRETRAINED_SHAPE = "3,224,224"  # "Pretrained models can use only a fixed 224 x 224 image size" (IC docs)
ALGORITHM = "image-classification"
CONTENT_TYPE = "application/x-image"
# Augmented manifests: "When using the ImageClassification algorithm with Augmented Manifest, the value of the
# RecordWrapperType parameter must be RecordIO" (image-classification docs); Pipe mode only.
MANIFEST_CONTENT_TYPE = "application/x-recordio"
MANIFEST_ATTRIBUTES = ["source-ref", LABEL_ATTRIBUTE]  # the image first, then the label: the order matters
# Serverless Inference: memory in 1 GB steps from 1 to 6 GB, MaxConcurrency 1..200 (ProductionVariantServerlessConfig).
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200


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


@dataclass(frozen=True)
class PresetChoice:
    name: str
    path: Path
    reason: str


def preset_problems(path: Path, counts: dict[str, int]) -> list[str]:
    """Why a transfer-learning hyperparameter file cannot train on the staged data (empty: it can)."""
    config = json.loads(path.read_text())
    problems = []
    if int(config.get("num_layers", 0)) not in PRETRAINED_DEPTHS:
        problems.append(f"num_layers {config.get('num_layers')} has no pretrained network ({PRETRAINED_DEPTHS})")
    if str(config.get("image_shape", "")).replace(" ", "") != PRETRAINED_SHAPE:
        problems.append(f"pretrained networks take image_shape {PRETRAINED_SHAPE} only")
    if int(config.get("resize", 0)) <= 224:
        problems.append("resize must exceed 224 so the staged images can be cropped to 224x224")
    if counts.get("channels", 3) != 3:
        problems.append(f"the staged images have {counts['channels']} channels; pretrained networks take RGB")
    if counts["num_training_samples"] < int(config.get("mini_batch_size", 32)):
        problems.append(f"{counts['num_training_samples']} training images are fewer than one mini-batch "
                        f"({config.get('mini_batch_size', 32)})")
    return problems


def choose_preset(requested: str, counts: dict[str, int]) -> PresetChoice:
    """`transfer` (fine-tune a pretrained ResNet) when it is valid for the staged data, else `scratch` (32x32).

    `auto` picks transfer when valid; asking for `transfer` explicitly refuses data it cannot train on.
    """
    if requested == "scratch":
        return PresetChoice("scratch", PRESETS["scratch"], "asked for")
    if requested not in {"auto", "transfer"}:
        raise SageMakerSetupError(f"unknown preset {requested!r}: auto, transfer or scratch")
    problems = preset_problems(PRESETS["transfer"], counts)
    if not problems:
        return PresetChoice("transfer", PRESETS["transfer"], "pretrained ResNet fits the staged data")
    if requested == "transfer":
        raise SageMakerSetupError("the transfer preset cannot train on the staged data: " + "; ".join(problems))
    return PresetChoice("scratch", PRESETS["scratch"], "transfer does not fit: " + "; ".join(problems))


def staged_counts(s3: Any, staged: StagedData) -> dict[str, int]:
    """Read the staged train.lst and dataset.json; refuse clearly when they are not there."""
    try:
        lst = s3.get_object(Bucket=staged.bucket, Key=f"{staged.prefix}/train.lst")["Body"].read().decode()
        s3.head_object(Bucket=staged.bucket, Key=f"{staged.prefix}/test.lst")
        dataset = parse_dataset_description(
            s3.get_object(Bucket=staged.bucket, Key=f"{staged.prefix}/{DATASET_FILE}")["Body"].read().decode())
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in {"NoSuchKey", "404", "NoSuchBucket"}:
            raise  # access denied, expired credentials, throttling: the CLI runner says so, not "nothing staged"
        raise SageMakerSetupError(
            f"no staged dataset at s3://{staged.bucket}/{staged.prefix}/ ({code}): "
            f"run `{hint('data_prep all')}` (or `stage`) first") from error
    return {"num_classes": len(dataset["class_names"]),
            "num_training_samples": sum(1 for line in lst.splitlines() if line.strip()),
            "channels": int(dataset.get("image_shape", [3])[0])}


def sagemaker_session(boto_session: Any) -> Any:
    """The SageMaker SDK's session on a boto3 session made by common.aws.session (its region and profile).

    The SDK is imported here, after the CLI runner has quietened it (common.cli.quiet_libraries)."""
    import sagemaker

    return sagemaker.Session(boto_session=boto_session)


def resolve_role(role: str | None, session: Any = None) -> str:
    if role:
        return role
    try:
        import sagemaker

        return str(sagemaker.get_execution_role(sagemaker_session=session))
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


@dataclass(frozen=True)
class ManifestChannels:
    """The training set as augmented manifests: the staged images plus the reviewed ones."""

    train: str  # s3:// URI of train.manifest
    validation: str
    train_count: int
    reviewed: dict[str, Any]  # what happened to each label line (data_prep.training.reviewed.Reviewed.report)


def _lst_rows(s3: Any, staged: StagedData, name: str) -> list[tuple[int, str]]:
    text = s3.get_object(Bucket=staged.bucket, Key=f"{staged.prefix}/{name}")["Body"].read().decode()
    return [(int(float(row[1])), row[2]) for row in (line.split("\t") for line in text.splitlines() if line.strip())]


def build_manifest_channels(s3: Any, staged: StagedData, counts: dict[str, int], labels: str, job_name: str,
                            announce: Callable[[str], None] | None = None) -> ManifestChannels:
    """Write train.manifest and validation.manifest for the job under `<prefix>/manifests/<job>/` (`counts`: the
    staged data's, from staged_counts, which has already refused a prefix with nothing staged).

    The built-in algorithm reads either .lst files and images or augmented manifests, not both, and an
    AugmentedManifestFile channel is one S3 object: so the staged training images become manifest lines
    too, next to the reviewed ones. Each reviewed image is stored as its model input (the canonical 32x32
    PNG every road uses) at `<prefix>/reviewed/<content hash>.png`, which also de-duplicates it: against the
    staged training images by manifest.csv's sha256 (the same hash), and against the other labels.
    """
    from data_prep.training.reviewed import ImageReader, read_manifests, select_reviewed

    class_names = [str(name) for name in parse_dataset_description(s3.get_object(
        Bucket=staged.bucket, Key=f"{staged.prefix}/{DATASET_FILE}")["Body"].read().decode())["class_names"]]
    try:
        staged_manifest = parse_manifest(s3.get_object(Bucket=staged.bucket, Key=f"{staged.prefix}/{MANIFEST_FILE}")
                                         ["Body"].read().decode())
    except ClientError:
        staged_manifest = {}
        if announce:
            announce(f"note: no {MANIFEST_FILE} staged: reviewed images are not de-duplicated against training")
    training_hashes = {row.sha256: row.class_index for row in staged_manifest.values() if row.split == "train"}
    reviewed = select_reviewed(read_manifests(labels, s3=s3), class_names, training_hashes, ImageReader(s3=s3),
                               log=announce)
    stamp = ground_truth_now()
    reviewed_lines = []
    for pixels, index, digest in zip(reviewed.pixels, reviewed.labels, reviewed.hashes, strict=True):
        key = f"{staged.prefix}/reviewed/{digest}.png"
        try:
            s3.head_object(Bucket=staged.bucket, Key=key)
        except ClientError:
            s3.put_object(Bucket=staged.bucket, Key=key, Body=encode_png(Image.fromarray(pixels)),
                          ContentType="image/png")
        reviewed_lines.append(GroundTruthLabel(f"s3://{staged.bucket}/{key}", class_names[index], index, stamp))

    def staged_lines(split: str, lst: str) -> list[GroundTruthLabel]:
        return [GroundTruthLabel(staged.uri(f"{split}/{file}"), class_names[index], index, stamp,
                                 job_name="labeling-job/dataset-manifest", human_annotated=False)
                for index, file in _lst_rows(s3, staged, lst)]

    train_lines = staged_lines("train", "train.lst") + reviewed_lines
    base = f"{staged.prefix}/manifests/{job_name}"
    for name, lines in (("train", train_lines), ("validation", staged_lines("test", "test.lst"))):
        s3.put_object(Bucket=staged.bucket, Key=f"{base}/{name}.manifest", Body=ground_truth_manifest(lines).encode())
    if announce:
        announce(f"training manifest: {counts['num_training_samples']} staged + {len(reviewed_lines)} reviewed images "
                 f"(s3://{staged.bucket}/{base}/train.manifest)")
    return ManifestChannels(f"s3://{staged.bucket}/{base}/train.manifest",
                            f"s3://{staged.bucket}/{base}/validation.manifest", len(train_lines),
                            {"source": labels, **reviewed.report()})


def manifest_channels(manifests: ManifestChannels) -> dict[str, Any]:
    """train and validation as AugmentedManifestFile channels: Pipe mode, RecordIO-wrapped, image then label."""
    from sagemaker.inputs import TrainingInput

    def channel(uri: str) -> Any:
        return TrainingInput(uri, distribution="FullyReplicated", compression="None",
                             content_type=MANIFEST_CONTENT_TYPE, record_wrapping="RecordIO",
                             s3_data_type="AugmentedManifestFile", input_mode="Pipe",
                             attribute_names=list(MANIFEST_ATTRIBUTES))

    return {"train": channel(manifests.train), "validation": channel(manifests.validation)}


def explain_client_error(error: ClientError, instance_type: str) -> SageMakerSetupError | ClientError:
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ResourceLimitExceeded":
        return SageMakerSetupError(
            f"service quota reached for {instance_type}: {error.response['Error'].get('Message', '')}. "
            "Request an increase in Service Quotas, or pass --instance-type with one you have quota for "
            "(ml.m5.xlarge works for this small dataset, slowly)")
    return error


def train(session: Any, role: str, staged: StagedData, *, instance_type: str = "ml.p3.2xlarge",
          instance_count: int = 1, spot: bool = False, max_run_seconds: int = 3600, preset: str = "auto",
          hyperparameters_path: Path | None = None, job_name: str | None = None, logs: bool = True,
          announce: Callable[[str], None] | None = None, labels: str | None = None) -> str:
    """Run the training job (streaming its logs when `logs`); return the job name.

    The hyperparameters come from `hyperparameters_path`, else from the preset (`auto`: transfer learning
    when it fits the staged data, else from scratch; see choose_preset). With `labels` (s3:// Ground Truth
    manifests), the reviewed images join the staged ones and the job reads both as augmented manifests
    (build_manifest_channels) in Pipe mode.
    """
    from sagemaker import image_uris
    from sagemaker.estimator import Estimator

    s3 = session.boto_session.client("s3")
    counts = staged_counts(s3, staged)
    name = job_name or f"scones-image-classification-{time.strftime('%Y%m%d-%H%M%S')}"
    inputs, input_mode = channels(staged), "File"
    if labels is not None:
        manifests = build_manifest_channels(s3, staged, counts, labels, name, announce)
        counts = {**counts, "num_training_samples": manifests.train_count}
        inputs, input_mode = manifest_channels(manifests), "Pipe"
    if hyperparameters_path is None:
        choice = choose_preset(preset, counts)
        hyperparameters_path = choice.path
        if announce is not None:
            announce(f"hyperparameters: the {choice.name} preset ({choice.reason}): {choice.path.name}")
    hyperparameters: dict[str, Any] = load_hyperparameters(hyperparameters_path, counts)
    estimator = Estimator(
        image_uri=image_uris.retrieve(ALGORITHM, session.boto_region_name),
        role=role, instance_count=instance_count, instance_type=instance_type,
        output_path=staged.uri("model"), sagemaker_session=session, hyperparameters=hyperparameters,
        input_mode=input_mode, max_run=max_run_seconds, use_spot_instances=spot,
        max_wait=max_run_seconds * 2 if spot else None,
    )
    try:
        estimator.fit(inputs, job_name=name, wait=True, logs="All" if logs else "None")
    except ClientError as error:
        raise explain_client_error(error, instance_type) from error
    return name


def data_capture_config(bucket: str, sampling_percentage: int = 100) -> Any:
    from sagemaker.model_monitor import DataCaptureConfig

    return DataCaptureConfig(enable_capture=True, sampling_percentage=sampling_percentage,
                             destination_s3_uri=f"s3://{bucket}/data_capture",
                             capture_options=["REQUEST", "RESPONSE"])


@dataclass(frozen=True)
class Serverless:
    """SageMaker Serverless Inference instead of instances: memory (MB) and maximum concurrent invocations."""

    memory_mb: int = 2048
    max_concurrency: int = 5

    def __post_init__(self) -> None:
        if self.memory_mb not in SERVERLESS_MEMORY_SIZES:
            raise SageMakerSetupError(f"serverless memory must be one of {SERVERLESS_MEMORY_SIZES} MB, "
                                      f"got {self.memory_mb}")
        if not 1 <= self.max_concurrency <= SERVERLESS_MAX_CONCURRENCY:
            raise SageMakerSetupError(f"serverless max concurrency must be 1..{SERVERLESS_MAX_CONCURRENCY}, got "
                                      f"{self.max_concurrency} (the account's total is a Service Quota, 10 by default)")

    def config(self) -> Any:
        from sagemaker.serverless import ServerlessInferenceConfig

        return ServerlessInferenceConfig(memory_size_in_mb=self.memory_mb, max_concurrency=self.max_concurrency)


def check_capture(serverless: Serverless | None, capture: bool) -> None:
    """Serverless Inference cannot capture data: refuse it unless the caller gives capture up, knowingly.

    Monitoring (`python -m monitoring report|drift`) reads the endpoint's data capture; a serverless
    endpoint would leave it with nothing, so the combination is refused rather than going dark silently.
    """
    if serverless is not None and capture:
        raise SageMakerSetupError(
            f"SageMaker Serverless Inference does not support data capture, so monitoring "
            f"(`{hint('monitoring report')}` and `drift`) would receive nothing from this endpoint. Deploy on "
            "instances (drop --serverless) to keep monitoring, or pass --no-capture to deploy serverless without it, "
            "knowingly.")


def completed_training_job(sagemaker_client: Any, training_job: str) -> dict[str, Any]:
    """DescribeTrainingJob of a job that finished: its model can be deployed (anything else is refused by name)."""
    job: dict[str, Any] = sagemaker_client.describe_training_job(TrainingJobName=training_job)
    if job["TrainingJobStatus"] != "Completed":
        raise SageMakerSetupError(f"training job {training_job} is {job['TrainingJobStatus']}, not Completed")
    return job


def model_name_for(endpoint_name: str, training_job: str) -> str:
    """The SageMaker model a job's artifact is served as on an endpoint (63 characters at most)."""
    return f"{endpoint_name}-{training_job}"[:63]


def deploy(session: Any, training_job: str, endpoint_name: str, bucket: str, *,
           instance_type: str = "ml.m5.large", instance_count: int = 1, wait: bool = True,
           serverless: Serverless | None = None, capture: bool = True) -> str:
    """Deploy the job's model artifact: on instances with data capture of every request and response, or
    (`serverless`, which cannot capture: `capture=False` is required) on Serverless Inference."""
    from sagemaker import image_uris
    from sagemaker.model import Model

    check_capture(serverless, capture)
    job = completed_training_job(session.sagemaker_client, training_job)
    model = Model(image_uri=image_uris.retrieve(ALGORITHM, session.boto_region_name),
                  model_data=job["ModelArtifacts"]["S3ModelArtifacts"], role=job["RoleArn"],
                  sagemaker_session=session, name=model_name_for(endpoint_name, training_job))
    try:
        if serverless is not None:
            model.deploy(serverless_inference_config=serverless.config(), endpoint_name=endpoint_name, wait=wait)
        else:
            model.deploy(initial_instance_count=instance_count, instance_type=instance_type,
                         endpoint_name=endpoint_name, wait=wait,
                         data_capture_config=data_capture_config(bucket) if capture else None)
    except ClientError as error:
        raise explain_client_error(error, "serverless inference" if serverless else instance_type) from error
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


def sam_deploy_command(endpoint_name: str, bucket: str, model_version: str | None = None) -> str:
    version = f' ModelVersion="{model_version}"' if model_version else ""
    return (f'sam build && sam deploy --parameter-overrides EndpointName="{endpoint_name}" '
            f'DataBucketName="{bucket}"{version}')


def update_samconfig(path: Path, endpoint_name: str, bucket: str, model_version: str | None = None) -> None:
    """Set EndpointName, DataBucketName (and ModelVersion, the events' model_version) in every
    parameter_overrides line of samconfig.toml."""
    text = path.read_text()
    values = [("EndpointName", endpoint_name), ("DataBucketName", bucket)]
    values += [("ModelVersion", model_version)] if model_version else []
    for name, value in values:
        text = re.sub(rf'{name}=\\"[^"\\]*\\"', f'{name}=\\\\"{value}\\\\"', text)
    path.write_text(text)


# Rolling a new model out to a live endpoint: SageMaker deployment guardrails ---------------------------------
#
# Blue/green (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails.html): SageMaker provisions
# the new (green) fleet beside the old (blue) one and shifts traffic to it all at once, in a canary step then the
# rest, or in linear steps; after each step a baking period (WaitIntervalInSeconds) watches the CloudWatch alarms,
# and any alarm going off sends 100% of the traffic back to the blue fleet. Limits (API_TrafficRoutingConfig,
# API_BlueGreenUpdatePolicy): each wait 0-3600 s; the canary at most 50% of the fleet; a linear step 10-50%;
# MaximumExecutionTimeoutInSeconds 600-28800, more than the total waiting; 1 to 10 alarms. The new endpoint
# configuration must keep the variant's name (deployment-guardrails-exclusions.html).

TRAFFIC_TYPES = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
ROLLBACK_ALARMS = ("Endpoint5xxAlarm", "EndpointLatencyAlarm")  # the template's alarms on the endpoint, logical IDs
MAX_WAIT_SECONDS = 3600
MAX_EXECUTION_SECONDS = 28800
MIN_EXECUTION_SECONDS = 600
PROVISIONING_ALLOWANCE_SECONDS = 1800  # time to start the green fleet, on top of the baking


@dataclass(frozen=True)
class TrafficShift:
    """How traffic moves to the new model; checked against SageMaker's limits before any call."""

    kind: str = "canary"  # all-at-once | canary | linear
    canary_percent: int = 10
    linear_step_percent: int = 20
    wait_seconds: int = 600  # baking period after each step
    termination_wait_seconds: int = 300  # the blue fleet is kept this long after the last step
    max_execution_seconds: int | None = None  # default: the waiting plus PROVISIONING_ALLOWANCE_SECONDS

    def __post_init__(self) -> None:
        if self.kind not in TRAFFIC_TYPES:
            raise SageMakerSetupError(f"traffic {self.kind!r}: choose {', '.join(TRAFFIC_TYPES)}")
        for name in ("wait_seconds", "termination_wait_seconds"):
            if not 0 <= getattr(self, name) <= MAX_WAIT_SECONDS:
                raise SageMakerSetupError(f"{name.replace('_', '-')} must be 0 to {MAX_WAIT_SECONDS}, got "
                                          f"{getattr(self, name)}")
        if self.kind == "canary" and not 1 <= self.canary_percent <= 50:
            raise SageMakerSetupError(f"the canary must be 1 to 50% of the new fleet, got {self.canary_percent}%")
        if self.kind == "linear" and not 10 <= self.linear_step_percent <= 50:
            raise SageMakerSetupError(f"a linear step must be 10 to 50% of the new fleet, got "
                                      f"{self.linear_step_percent}%")
        timeout = self.execution_timeout
        if not MIN_EXECUTION_SECONDS <= timeout <= MAX_EXECUTION_SECONDS or timeout <= self.total_wait_seconds:
            raise SageMakerSetupError(
                f"the deployment may take {timeout} s at most, which must lie in {MIN_EXECUTION_SECONDS}-"
                f"{MAX_EXECUTION_SECONDS} s and exceed its {self.total_wait_seconds} s of waiting")

    @property
    def steps(self) -> int:
        """Traffic steps, each followed by a baking period."""
        if self.kind == "linear":
            return -(-100 // self.linear_step_percent)
        return 2 if self.kind == "canary" else 1

    @property
    def total_wait_seconds(self) -> int:
        """The most the deployment waits on purpose: a baking period per step, then the termination wait."""
        return self.wait_seconds * self.steps + self.termination_wait_seconds

    @property
    def execution_timeout(self) -> int:
        if self.max_execution_seconds is not None:
            return self.max_execution_seconds
        return max(MIN_EXECUTION_SECONDS, min(MAX_EXECUTION_SECONDS,
                                              self.total_wait_seconds + PROVISIONING_ALLOWANCE_SECONDS))

    def deployment_config(self, alarms: list[str]) -> dict[str, Any]:
        """UpdateEndpoint's DeploymentConfig: blue/green with this traffic shift, rolled back on `alarms`."""
        if not 1 <= len(alarms) <= 10:
            raise SageMakerSetupError(f"automatic rollback needs 1 to 10 alarms, got {len(alarms)}")
        routing: dict[str, Any] = {"Type": TRAFFIC_TYPES[self.kind], "WaitIntervalInSeconds": self.wait_seconds}
        if self.kind == "canary":
            routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": self.canary_percent}
        if self.kind == "linear":
            routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": self.linear_step_percent}
        return {
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing,
                                      "TerminationWaitInSeconds": self.termination_wait_seconds,
                                      "MaximumExecutionTimeoutInSeconds": self.execution_timeout},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarms]},
        }


def rollback_alarms(cloudformation: Any, cloudwatch: Any, stack_name: str, endpoint_name: str) -> list[str]:
    """The names of the stack's endpoint alarms (Endpoint5xxAlarm, EndpointLatencyAlarm), after checking that
    they watch `endpoint_name`: a rollback on alarms that watch another endpoint would guard nothing."""
    names = []
    for logical_id in ROLLBACK_ALARMS:
        try:
            resource = cloudformation.describe_stack_resource(StackName=stack_name, LogicalResourceId=logical_id)
        except ClientError as error:
            raise SageMakerSetupError(
                f"stack {stack_name!r} has no {logical_id} ({error.response['Error'].get('Message', '')}): deploy "
                "the workflow (sam deploy), or name the alarms with --rollback-alarm") from error
        names.append(resource["StackResourceDetail"]["PhysicalResourceId"])
    for alarm in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]:
        watched = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}.get("EndpointName")
        if watched != endpoint_name:
            raise SageMakerSetupError(
                f"alarm {alarm['AlarmName']} watches endpoint {watched!r}, not {endpoint_name!r}: deploy the stack "
                f"with EndpointName={endpoint_name} (or pass --rollback-alarm) so a bad model can be rolled back")
    return names


@dataclass(frozen=True)
class UpdateResult:
    endpoint_name: str
    old_config: str
    new_config: str
    status: str  # the endpoint's status when the update ended
    rolled_back: bool  # the endpoint still serves the old configuration

    @property
    def deployed(self) -> bool:
        return self.status == "InService" and not self.rolled_back


def update_endpoint(sagemaker_client: Any, endpoint_name: str, training_job: str, image_uri: str,
                    shift: TrafficShift, alarms: list[str], *, config_name: str | None = None, wait: bool = True,
                    poll_seconds: float = 30.0, announce: Callable[[str], None] | None = None) -> UpdateResult:
    """Put `training_job`'s model on the live endpoint with a blue/green deployment that rolls itself back.

    The new endpoint configuration copies the live one (the variant's name, instances and data capture:
    monitoring must not go dark) with the new model; only the model changes.
    """
    say = announce or (lambda message: None)
    endpoint = sagemaker_client.describe_endpoint(EndpointName=endpoint_name)
    if endpoint["EndpointStatus"] != "InService":
        raise SageMakerSetupError(f"endpoint {endpoint_name} is {endpoint['EndpointStatus']}; it must be InService "
                                  "to be updated")
    old_config = endpoint["EndpointConfigName"]
    live = sagemaker_client.describe_endpoint_config(EndpointConfigName=old_config)
    if len(live["ProductionVariants"]) != 1:
        raise SageMakerSetupError(f"endpoint {endpoint_name} has {len(live['ProductionVariants'])} variants; "
                                  "update an endpoint with one")
    variant = live["ProductionVariants"][0]
    if "ServerlessConfig" in variant and shift.kind != "all-at-once":
        raise SageMakerSetupError("a serverless endpoint has no fleet to shift in steps: use --traffic all-at-once")
    job = completed_training_job(sagemaker_client, training_job)
    model_name = model_name_for(endpoint_name, training_job)
    try:
        sagemaker_client.describe_model(ModelName=model_name)
    except ClientError:
        sagemaker_client.create_model(
            ModelName=model_name, ExecutionRoleArn=job["RoleArn"],
            PrimaryContainer={"Image": image_uri, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    new_config = config_name or f"{model_name[:48]}-{time.strftime('%Y%m%d%H%M%S')}"
    new_variant = {key: value for key, value in variant.items()
                   if key in {"VariantName", "InstanceType", "InitialInstanceCount", "ServerlessConfig"}}
    new_variant.update({"ModelName": model_name, "InitialVariantWeight": 1.0})
    request: dict[str, Any] = {"EndpointConfigName": new_config, "ProductionVariants": [new_variant]}
    if live.get("DataCaptureConfig"):
        request["DataCaptureConfig"] = live["DataCaptureConfig"]
    sagemaker_client.create_endpoint_config(**request)
    sagemaker_client.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=new_config,
                                     DeploymentConfig=shift.deployment_config(alarms))
    say(f"updating {endpoint_name}: {old_config} -> {new_config} ({shift.kind}, rollback on {', '.join(alarms)})")
    if not wait:
        return UpdateResult(endpoint_name, old_config, new_config, "Updating", False)
    last = ""
    while True:
        described = sagemaker_client.describe_endpoint(EndpointName=endpoint_name)
        status = described["EndpointStatus"]
        if status != last:
            say(f"{endpoint_name}: {status}")
            last = status
        if status not in {"Updating", "SystemUpdating", "RollingBack", "Creating"}:
            break
        time.sleep(poll_seconds)
    return UpdateResult(endpoint_name, old_config, new_config, status,
                        rolled_back=described["EndpointConfigName"] != new_config)
