"""SageMaker hosting: put a checked model archive behind an endpoint, with data capture, and roll new ones out.

Every call is a boto3 client call (CreateModel, CreateEndpointConfig, CreateEndpoint, UpdateEndpoint, ...), with
the requests the SageMaker Python SDK's PyTorchModel makes for an archive that carries its own `code/` (the
SDK's `Model._script_mode_env_vars` after a repack: SAGEMAKER_PROGRAM `inference.py`, SAGEMAKER_SUBMIT_DIRECTORY
`/opt/ml/model/code`, SAGEMAKER_CONTAINER_LOG_LEVEL, SAGEMAKER_REGION), plus which bytes serve: the model's
sha256 (its ONNX file's, metadata.json's `model_sha256`), the archive's sha256 and the ModelVersion, in the
model's environment (DescribeModel returns them) and its tags. A model is named after its bytes
(`<endpoint>-<sha256[:12]>`), so deploying the same bytes twice reuses it.

The container is SageMaker's PyTorch inference image (INFERENCE_PYTORCH_VERSION / PYTHON_VERSION, the newest the
SDK's image_uris configuration lists); the hooks need only onnxruntime (code/requirements.txt), numpy and Pillow.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from common import settings
from common.errors import ExitStatus
from common.model_archive import ARCHIVE_SHA256_ENV, MODEL_SHA256_ENV, MODEL_VERSION_ENV, ResolvedModel
from common.settings import DEFAULT_VARIANT
from data_prep.training.sagemaker_jobs import (
    MODELS_PREFIX,
    PYTHON_VERSION,
    SageMakerSetupError,
    container_image,
    explain_client_error,
)

INFERENCE_PYTORCH_VERSION = "2.6.0"  # SageMaker's PyTorch inference container (image_uris config: pytorch, inference)
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
# Serverless Inference: memory in 1 GB steps from 1 to 6 GB, MaxConcurrency 1..200 (ProductionVariantServerlessConfig).
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200
TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def inference_image(region: str, instance_type: str = DEFAULT_INSTANCE_TYPE) -> str:
    # Serverless endpoints run the CPU image: ml.m5.large stands for them in the lookup.
    return container_image(region, "inference", INFERENCE_PYTORCH_VERSION, PYTHON_VERSION, instance_type)


def model_version(sha256: str) -> str:
    """What the events call model_version (the template's ModelVersion) for a model: its bytes, short."""
    return f"sha256-{sha256[:12]}"


def model_name_for(endpoint_name: str, archive_sha256: str) -> str:
    """The SageMaker model serving this archive on this endpoint (63 characters at most, named by the archive's
    sha256: the bytes SageMaker reads from ModelDataUrl whenever an instance starts, code/ included)."""
    return f"{endpoint_name[:50]}-{archive_sha256[:12]}"


ARCHIVE_SHA256_METADATA = "archive-sha256"  # S3 object metadata (x-amz-meta-archive-sha256) on uploaded archives
MODEL_SHA256_METADATA = "model-sha256"


def archive_key(archive_sha256: str) -> str:
    """Where an archive lives in the bucket: under its own sha256 (content-addressed), so the key names the bytes."""
    return f"{MODELS_PREFIX}/archives/sha256-{archive_sha256}/model.tar.gz"


class ArchiveConflictError(SageMakerSetupError):
    """The archive's content-addressed key holds other bytes: nothing is overwritten (exit 3: the bucket's state,
    not the user's input, is what is wrong)."""

    exit_status = ExitStatus.ENVIRONMENT


@dataclass(frozen=True)
class ModelToServe:
    """A checked model and the S3 archive that holds exactly it."""

    model: ResolvedModel
    archive_uri: str
    archive_sha256: str

    @property
    def sha256(self) -> str:
        return self.model.sha256


@dataclass(frozen=True)
class LocalArchive:
    """The archive to ship, on this machine, checked: the bytes the gate judged (its sha256) and that will serve."""

    model: ResolvedModel
    path: Path
    sha256: str


def local_archive(model: ResolvedModel, workdir: Path) -> LocalArchive:
    """The archive that ships `model`: a folder packaged into `workdir`; an archive (local, or downloaded from S3
    or a training job when it was resolved) as the bytes that were checked."""
    from common.model_archive import sha256_file
    from data_prep.packaging import package_model

    if model.local_archive is None or not model.archive_sha256:
        packaged = package_model(model.model_dir, workdir / "package" / "model.tar.gz")
        return LocalArchive(model, packaged.archive, packaged.archive_sha256)
    digest = sha256_file(model.local_archive)
    if digest != model.archive_sha256:
        raise SageMakerSetupError(f"{model.local_archive} changed since it was checked (sha256 {digest[:12]}..., "
                                  f"was {model.archive_sha256[:12]}...): deploy again")
    return LocalArchive(model, model.local_archive, digest)


def _stored_sha256(s3: Any, bucket: str, key: str) -> str | None:
    """The sha256 of the object at `key`, or None when there is none: S3's own SHA-256 checksum when the object has
    a full-object one, else its bytes, read and hashed (never its metadata alone: anyone may write that)."""
    import base64
    import hashlib

    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code", "")) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    checksum = head.get("ChecksumSHA256")
    if checksum and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT" and "-" not in checksum:
        return base64.b64decode(checksum).hex()
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def put_content_addressed(s3: Any, archive: LocalArchive, bucket: str) -> tuple[str, bool]:
    """(s3:// URI, uploaded) of the archive at its content-addressed key (archive_key). An object already there is
    reused when it is these bytes; one with other bytes is an error. The upload never overwrites: PutObject with
    If-None-Match: * (a 412 means someone wrote the key meanwhile: it is then checked as above) and S3 checks the
    body against its SHA-256 (ChecksumSHA256)."""
    import base64

    key = archive_key(archive.sha256)
    uri = f"s3://{bucket}/{key}"
    for attempt in range(2):
        stored = _stored_sha256(s3, bucket, key)
        if stored == archive.sha256:
            return uri, False
        if stored is not None:
            raise ArchiveConflictError(f"{uri} holds bytes with sha256 {stored[:12]}..., not {archive.sha256[:12]}... "
                                       "(its name): something else wrote it; it is not overwritten. Delete it "
                                       "after checking what serves from it, then deploy again")
        if attempt:
            break
        with archive.path.open("rb") as body:
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/gzip",
                              ChecksumSHA256=base64.b64encode(bytes.fromhex(archive.sha256)).decode(),
                              Metadata={ARCHIVE_SHA256_METADATA: archive.sha256,
                                        MODEL_SHA256_METADATA: archive.model.sha256})
            except ClientError as error:
                if str(error.response.get("Error", {}).get("Code", "")) not in {"PreconditionFailed", "412"}:
                    raise
                continue  # written meanwhile: check what is there
        return uri, True
    raise ArchiveConflictError(f"{uri} could not be written nor read back")


def publish(s3: Any, archive: LocalArchive, bucket: str,
            announce: Callable[[str], None] | None = None) -> ModelToServe:
    """The checked archive in S3 under its own sha256 (put_content_addressed): s3://BUCKET/models/archives/
    sha256-<archive sha256>/model.tar.gz, whatever it came from (a folder packaged, a local archive, an s3://
    archive or a training job's, copied from the bytes that were checked), so ModelDataUrl always names the bytes
    the gate judged, whenever SageMaker reads it."""
    uri, uploaded = put_content_addressed(s3, archive, bucket)
    if announce:
        done = "uploaded" if uploaded else "already in S3, the same bytes:"
        announce(f"{done} {uri} (archive sha256 {archive.sha256[:12]}..., model sha256 {archive.model.sha256[:12]}...)")
    return ModelToServe(archive.model, uri, archive.sha256)


def create_model_request(name: str, role: str, image_uri: str, serving: ModelToServe, region: str) -> dict[str, Any]:
    environment = {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
        MODEL_SHA256_ENV: serving.sha256,
        ARCHIVE_SHA256_ENV: serving.archive_sha256,
        MODEL_VERSION_ENV: model_version(serving.sha256),
    }
    return {
        "ModelName": name,
        "ExecutionRoleArn": role,
        "PrimaryContainer": {"Image": image_uri, "ModelDataUrl": serving.archive_uri, "Environment": environment},
        "Tags": [{"Key": "scones:model-sha256", "Value": serving.sha256},
                 {"Key": "scones:archive-sha256", "Value": serving.archive_sha256},
                 {"Key": "scones:model-version", "Value": model_version(serving.sha256)}],
    }


def ensure_model(sagemaker: Any, request: dict[str, Any]) -> str:
    """CreateModel, unless a model of that name serves the same bytes already (then it is reused): the same
    archive (SCONES_ARCHIVE_SHA256), model (SCONES_MODEL_SHA256) and ModelDataUrl."""
    name = str(request["ModelName"])
    try:
        existing = sagemaker.describe_model(ModelName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ValidationException":
            raise
        sagemaker.create_model(**request)
        return name
    served, wanted = (serving_of(container) for container in (existing.get("PrimaryContainer", {}),
                                                               request["PrimaryContainer"]))
    differing = [key for key in wanted if served[key] != wanted[key]]
    if differing:
        what = ", ".join(f"{key} {served[key]!r}, not {wanted[key]}" for key in differing)
        raise SageMakerSetupError(f"SageMaker model {name} exists and serves {what}: delete it "
                                  "(.venv/bin/python -m workflow cleanup) or deploy under another endpoint name")
    return name


def serving_of(container: dict[str, Any]) -> dict[str, str]:
    """Which bytes a model's container serves: its model's and archive's sha256 and the archive's S3 URL."""
    environment = container.get("Environment", {})
    return {"model_sha256": str(environment.get(MODEL_SHA256_ENV, "")),
            "archive_sha256": str(environment.get(ARCHIVE_SHA256_ENV, "")),
            "model_data_url": str(container.get("ModelDataUrl", ""))}


OFFLINE_IMAGE = "local/data-prep-serve"  # offline, the container is `data_prep serve` itself
OFFLINE_ROLE = "arn:aws:iam::123456789012:role/OfflineSageMakerRole"


def register_offline(sagemaker: Any, s3: Any, model_dir: Path, endpoint_name: str, bucket: str,
                     workdir: Path) -> ModelToServe:
    """Offline, the served model is described as on AWS: the same CreateModel (its sha256 in the environment and
    tags), CreateEndpointConfig and CreateEndpoint against moto, so DescribeEndpoint/DescribeModel tell which
    bytes serve exactly as they do for a deployed endpoint."""
    from common.model_archive import resolve_model
    from common.settings import OFFLINE_REGION

    serving = publish(s3, local_archive(resolve_model(model_dir, workdir), workdir), bucket)
    request = create_model_request(model_name_for(endpoint_name, serving.archive_sha256), OFFLINE_ROLE, OFFLINE_IMAGE,
                                   serving, OFFLINE_REGION)
    deploy_new(sagemaker, endpoint_name, request, Hosting(), bucket, poll_seconds=0)
    return serving


def served_models(sagemaker: Any, endpoint_name: str) -> dict[str, dict[str, str]]:
    """Which bytes an endpoint serves, per variant (serving_of): DescribeEndpoint -> its config -> each model."""
    endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return {variant["VariantName"]: serving_of(sagemaker.describe_model(ModelName=variant["ModelName"]).get(
        "PrimaryContainer", {})) for variant in config["ProductionVariants"]}


def served_sha256(sagemaker: Any, endpoint_name: str) -> dict[str, str]:
    """The model's sha256 an endpoint serves, per variant (served_models)."""
    return {variant: served["model_sha256"] for variant, served in served_models(sagemaker, endpoint_name).items()}


def data_capture_config(bucket: str, sampling_percentage: int = 100) -> dict[str, Any]:
    """Capture every request and response to s3://BUCKET/<DataCapturePrefix> (the stack's as deployed:
    samconfig.toml's override, else the template's), where monitoring and the drift check read them."""
    prefix = settings.deployed_parameters()["DataCapturePrefix"]
    return {"EnableCapture": True, "InitialSamplingPercentage": sampling_percentage,
            "DestinationS3Uri": f"s3://{bucket}/{prefix}",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            # as the SDK's DataCaptureConfig: JSON answers are captured as JSON, images as base64
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}


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

    def config(self) -> dict[str, int]:
        return {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}


def check_capture(serverless: Serverless | None, capture: bool) -> None:
    """Serverless Inference cannot capture data: refuse it unless the caller gives capture up, knowingly.

    Monitoring (`python -m monitoring report|drift`) reads the endpoint's data capture; a serverless
    endpoint would leave it with nothing, so the combination is refused rather than going dark silently.
    """
    if serverless is not None and capture:
        raise SageMakerSetupError(
            "SageMaker Serverless Inference does not support data capture, so monitoring "
            "(`.venv/bin/python -m monitoring report` and `drift`) would receive nothing from this endpoint. Deploy "
            "on instances (drop --serverless) to keep monitoring, or pass --no-capture to deploy serverless without "
            "it, knowingly.")


@dataclass(frozen=True)
class Hosting:
    """Where and how a new endpoint serves."""

    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    serverless: Serverless | None = None
    capture: bool = True


def endpoint_config_request(config_name: str, model_name: str, hosting: Hosting, bucket: str) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": DEFAULT_VARIANT, "ModelName": model_name, "InitialVariantWeight": 1.0}
    if hosting.serverless is not None:
        variant["ServerlessConfig"] = hosting.serverless.config()
    else:
        variant.update({"InstanceType": hosting.instance_type, "InitialInstanceCount": hosting.instance_count})
    request: dict[str, Any] = {"EndpointConfigName": config_name, "ProductionVariants": [variant]}
    if hosting.capture:
        request["DataCaptureConfig"] = data_capture_config(bucket)
    return request


def config_name_for(model_name: str) -> str:
    return f"{model_name[:48]}-{time.strftime('%Y%m%d%H%M%S')}"


def endpoint_exists(sagemaker: Any, endpoint_name: str) -> bool:
    try:
        sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationException":
            return False
        raise
    return True


def wait_for_endpoint(sagemaker: Any, endpoint_name: str, *, poll_seconds: float = 30.0,
                      announce: Callable[[str], None] | None = None) -> dict[str, Any]:
    """DescribeEndpoint until it leaves Creating/Updating/RollingBack, saying each new status."""
    say = announce or (lambda message: None)
    last = ""
    while True:
        described: dict[str, Any] = sagemaker.describe_endpoint(EndpointName=endpoint_name)
        status = described["EndpointStatus"]
        if status != last:
            say(f"{endpoint_name}: {status}")
            last = status
        if status not in TRANSITIONAL:
            return described
        time.sleep(poll_seconds)


class EndpointFailedError(SageMakerSetupError):
    """The endpoint did not come InService: SageMaker's reason is in the message."""


def deploy_new(sagemaker: Any, endpoint_name: str, model_request: dict[str, Any], hosting: Hosting, bucket: str, *,
               wait: bool = True, poll_seconds: float = 30.0, config_name: str | None = None,
               announce: Callable[[str], None] | None = None) -> str:
    """CreateModel (or reuse), CreateEndpointConfig, CreateEndpoint; refused when the endpoint exists (that is
    `deploy update`'s work, with its guardrails)."""
    check_capture(hosting.serverless, hosting.capture)
    if endpoint_exists(sagemaker, endpoint_name):
        raise SageMakerSetupError(f"endpoint {endpoint_name} exists: roll the model out to it with "
                                  "`.venv/bin/python -m data_prep deploy update` (blue/green, rolled back on its "
                                  "alarms)")
    where = "serverless inference" if hosting.serverless else hosting.instance_type
    try:
        model_name = ensure_model(sagemaker, model_request)
        config = config_name or config_name_for(model_name)
        sagemaker.create_endpoint_config(**endpoint_config_request(config, model_name, hosting, bucket))
        sagemaker.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config,
                                  Tags=model_request.get("Tags", []))
    except ClientError as error:
        raise explain_client_error(error, where) from error
    if wait:
        described = wait_for_endpoint(sagemaker, endpoint_name, poll_seconds=poll_seconds, announce=announce)
        if described["EndpointStatus"] != "InService":
            raise EndpointFailedError(f"endpoint {endpoint_name} is {described['EndpointStatus']}: "
                                      f"{described.get('FailureReason', 'no reason given')}")
    return config


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


def stack_model_version(cloudformation: Any, stack_name: str) -> str | None:
    """The workflow stack's ModelVersion parameter (what its events call the model), or None when there is no such
    stack or parameter. An update rolls a new model out under the stack: until `sam deploy` bakes the new
    ModelVersion into the state machine, its events name the old one."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":  # "Stack ... does not exist"
            return None
        raise
    parameters = {item["ParameterKey"]: item.get("ParameterValue") for item in stacks[0].get("Parameters", [])}
    return parameters.get("ModelVersion")


def sam_deploy_command(endpoint_name: str, bucket: str, model_version: str | None = None) -> str:
    """The stack's deploy with these parameters, runnable as printed from a fresh clone: `make build` installs the
    pinned SAM CLI in .venv-sam (make install-sam) and builds, then that `sam` deploys (docs/deploy.md)."""
    version = f' ModelVersion="{model_version}"' if model_version else ""
    return (f'make build && .venv-sam/bin/sam deploy --parameter-overrides EndpointName="{endpoint_name}" '
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
            if error.response.get("Error", {}).get("Code") != "ValidationError":  # "... does not exist"
                raise  # access denied, throttling: not "no alarm" (the CLI runner says what it is)
            raise SageMakerSetupError(
                f"stack {stack_name!r} has no {logical_id} ({error.response['Error'].get('Message', '')}): deploy "
                "the workflow (`make deploy`: the pinned SAM CLI builds and deploys it), or name the alarms with "
                "--rollback-alarm") from error
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


def check_updatable(sagemaker_client: Any, endpoint_name: str, shift: TrafficShift) -> tuple[str, dict[str, Any]]:
    """(the live endpoint config's name, its description) when the endpoint can take a guarded update:
    InService, one variant, and a fleet to shift unless all at once. Called before anything is made."""
    try:
        endpoint = sagemaker_client.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ValidationException":
            raise
        raise SageMakerSetupError(f"endpoint {endpoint_name} does not exist: create it with "
                                  "`.venv/bin/python -m data_prep deploy new`") from error
    if endpoint["EndpointStatus"] != "InService":
        raise SageMakerSetupError(f"endpoint {endpoint_name} is {endpoint['EndpointStatus']}; it must be InService "
                                  "to be updated")
    old_config = str(endpoint["EndpointConfigName"])
    live: dict[str, Any] = sagemaker_client.describe_endpoint_config(EndpointConfigName=old_config)
    if len(live["ProductionVariants"]) != 1:
        raise SageMakerSetupError(f"endpoint {endpoint_name} has {len(live['ProductionVariants'])} variants; "
                                  "update an endpoint with one")
    if "ServerlessConfig" in live["ProductionVariants"][0] and shift.kind != "all-at-once":
        raise SageMakerSetupError("a serverless endpoint has no fleet to shift in steps: use --traffic all-at-once")
    return old_config, live


def update_endpoint(sagemaker_client: Any, endpoint_name: str, model_request: dict[str, Any], shift: TrafficShift,
                    alarms: list[str], *, config_name: str | None = None, wait: bool = True,
                    poll_seconds: float = 30.0, announce: Callable[[str], None] | None = None) -> UpdateResult:
    """Put the model on the live endpoint with a blue/green deployment that rolls itself back.

    The endpoint is checked (InService, one variant, a fleet to shift unless all at once) before anything is
    created. The new endpoint configuration copies the live one (the variant's name, instances and data capture:
    monitoring must not go dark) with the new model; only the model changes.
    """
    say = announce or (lambda message: None)
    old_config, live = check_updatable(sagemaker_client, endpoint_name, shift)
    variant = live["ProductionVariants"][0]
    deployment = shift.deployment_config(alarms)
    model_name = ensure_model(sagemaker_client, model_request)
    new_config = config_name or config_name_for(model_name)
    new_variant = {key: value for key, value in variant.items()
                   if key in {"VariantName", "InstanceType", "InitialInstanceCount", "ServerlessConfig"}}
    new_variant.update({"ModelName": model_name, "InitialVariantWeight": 1.0})
    request: dict[str, Any] = {"EndpointConfigName": new_config, "ProductionVariants": [new_variant]}
    if live.get("DataCaptureConfig"):
        request["DataCaptureConfig"] = live["DataCaptureConfig"]
    sagemaker_client.create_endpoint_config(**request)
    sagemaker_client.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=new_config,
                                     DeploymentConfig=deployment)
    say(f"updating {endpoint_name}: {old_config} -> {new_config} ({shift.kind}, rollback on {', '.join(alarms)})")
    if not wait:
        return UpdateResult(endpoint_name, old_config, new_config, "Updating", False)
    described = wait_for_endpoint(sagemaker_client, endpoint_name, poll_seconds=poll_seconds, announce=say)
    return UpdateResult(endpoint_name, old_config, new_config, described["EndpointStatus"],
                        rolled_back=described["EndpointConfigName"] != new_config)
