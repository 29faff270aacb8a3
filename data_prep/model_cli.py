"""`.venv/bin/python -m data_prep train local|sagemaker`, `package`, `deploy new|update`: the one model line's commands.

Parses and displays only; the steps are data_prep.training (local, sagemaker_jobs, sagemaker_deploy),
data_prep.packaging and common.model_archive. The trainer's options are the same for both modes, so a job on
SageMaker trains exactly what `train local` would with the same options.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from common import settings
from common.artefacts import is_s3_uri, require_folder
from common.aws import account_id, aws_options
from common.aws import session as aws_session
from common.cli import err, json_option, out, print_json, progress_bar, terminal_for_our_lines
from common.errors import ExitStatus
from data_prep.training.config import TrainConfig

if TYPE_CHECKING:
    from common.model_archive import ResolvedModel
    from data_prep.training.sagemaker_deploy import LocalArchive

LAYOUT = settings.DEFAULT_LAYOUT
F = TypeVar("F", bound=Callable[..., Any])


def say(message: str) -> None:
    err.print(message, markup=False, highlight=False)


def parse_classes(value: str | None) -> list[str] | None:
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


def trainer_options(command: F) -> F:
    """The trainer's options: the same for `train local` and `train sagemaker` (one trainer)."""
    options = [
        click.option("--members", type=click.IntRange(1, 16), default=TrainConfig.members, show_default=True,
                     help="Folds; each fold network scores the fold it never saw, to calibrate the temperature."),
        click.option("--epochs", type=click.IntRange(1, 1000), default=TrainConfig.epochs, show_default=True),
        click.option("--serve-ensemble", is_flag=True,
                     help="Serve the fold networks averaged (about +1.5 points here, 3x the latency) instead of one "
                          "network trained on all the data."),
        click.option("--distill", type=click.FloatRange(0.0, 1.0), default=TrainConfig.distill, show_default=True,
                     help="Weight of the fold networks' soft targets for the served network (0: plain training)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--classes", help="Comma-separated class names; their order is the class index order (as for "
                                       "transform). Default: the dataset's classes, or every sub-folder with images."),
        click.option("--validation-fraction", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
                     help="With an image folder: share held out (stable by path) for the validation report."),
        click.option("--threshold", type=click.FloatRange(0.0, 1.0, min_open=True),
                     default=settings.confidence_threshold, show_default="the template's ConfidenceThreshold",
                     help="Confidence threshold the report measures coverage and precision at."),
        click.option("--preset", type=click.Choice(["scratch", "transfer"]), default="scratch", show_default=True,
                     help="scratch: the small ResNet trained from scratch on 32x32; transfer: fine-tune ResNet-18 "
                          "pretrained on ImageNet (torchvision's weights; learning rate 0.01), the 32x32 input "
                          "resized to --input-size inside the model."),
        click.option("--input-size", type=click.IntRange(32, 224), default=TrainConfig.input_size,
                     show_default=True, help="--preset transfer: the side the input is resized to in the model."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def train_config(members: int, epochs: int, seed: int, serve_ensemble: bool, distill: float, preset: str,
                 input_size: int) -> TrainConfig:
    from data_prep.training.config import for_preset

    return for_preset(preset, members=members, epochs=epochs, seed=seed, serve_ensemble=serve_ensemble,
                      distill=distill, input_size=input_size)


@click.group("train")
def train_group() -> None:
    """Train the classifier: `local` on this CPU, `sagemaker` the same trainer in a SageMaker training job.

    \b
    Examples:
      .venv/bin/python -m data_prep train local          # out/dataset -> out/model
      .venv/bin/python -m data_prep train sagemaker --role arn:aws:iam::123456789012:role/SageMakerRole
    """


@train_group.command("local")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=LAYOUT.dataset,
              show_default=True, help="data_prep's dataset layout, or a folder of <label>/<image> files.")
@click.option("--model-dir", type=click.Path(path_type=Path), default=LAYOUT.model, show_default=True,
              help="Where model.onnx, metadata.json, baseline.json and validation_report.json go.")
@trainer_options
@click.option("--labels", help="Reviewed images to add to the training set: a Ground Truth manifest, a folder of them "
                               "(e.g. out/bucket/labels/) or s3://bucket/labels/.")
@click.option("--bucket-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="With --labels: a folder mirroring the bucket the manifests' source-refs point into (default: "
                   "the folder holding the manifests' labels/ folder, then S3).")
@click.option("--weights", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="--preset transfer: torchvision's resnet18 ImageNet weights file (resnet18-f37072fd.pth); "
                   "default: downloaded from torchvision's URL (hash checked).")
@json_option
@aws_options
def train_local_command(data_dir: Path, model_dir: Path, members: int, epochs: int, serve_ensemble: bool,
                        distill: float, seed: int, classes: str | None, validation_fraction: float, threshold: float,
                        preset: str, input_size: int, labels: str | None, bucket_dir: Path | None,
                        weights: Path | None, as_json: bool, region: str | None, profile: str | None) -> None:
    """Train on this machine's CPU with PyTorch: model.onnx (its sha256 in metadata.json), the drift baseline and
    the validation report in one folder.

    \b
    Examples:
      .venv/bin/python -m data_prep train local          # out/dataset -> out/model
      .venv/bin/python -m data_prep train local --data-dir photos/ --classes bicycle,motorcycle --epochs 10
      .venv/bin/python -m data_prep train local --labels out/bucket/labels/  # add the reviewed images
      .venv/bin/python -m data_prep train local --preset transfer --weights resnet18-f37072fd.pth --epochs 10
    """
    from common.artefacts import read_model_metadata
    from common.aws import lazy_client
    from data_prep.training.local import train_local

    if bucket_dir is not None and not labels:
        raise click.UsageError("--bucket-dir goes with --labels")
    if weights is not None and preset != "transfer":
        raise click.UsageError("--weights goes with --preset transfer")
    require_folder(data_dir, "build the dataset with `.venv/bin/python -m data_prep transform`, or pass --data-dir")
    # S3 only when a manifest or image is not on disk: offline labels need no AWS setup
    s3 = lazy_client("s3", region, profile) if labels else None
    config = train_config(members, epochs, seed, serve_ensemble, distill, preset, input_size)
    with terminal_for_our_lines(model_dir / "train.log") as log, progress_bar("training", unit="epochs") as progress:
        metrics = train_local(data_dir, model_dir, config, threshold=threshold, validation_fraction=validation_fraction,
                              progress=progress, classes=parse_classes(classes), log=say, labels=labels,
                              bucket_dir=bucket_dir, s3=s3, weights=weights)
    if log.note():
        say(log.note() or "")
    metadata = read_model_metadata(model_dir)
    used = metadata.get("reviewed_labels") if labels else None
    if as_json:
        print_json({"model_dir": str(model_dir), "model_sha256": metadata.get("model_sha256"), "metrics": metrics,
                    "reviewed_labels": used})
        return
    out.print(f"model written to {model_dir} (sha256 {metadata.get('model_sha256')}): {metrics}", markup=False,
              highlight=False)
    if used is not None:
        out.print(f"reviewed images used: {used['used']} from {len(used['manifests'])} manifest(s) "
                  f"({used['duplicates_of_training']} already in the training set, {used['unreadable']} "
                  f"unreadable, {used['unknown_class']} of unknown classes)", markup=False, highlight=False)


bucket_option = click.option("--bucket", help="The data bucket. Default: samconfig.toml's DataBucketName when it "
                                              "names one, else SageMaker's default bucket (sagemaker-REGION-ACCOUNT).")
role_option = click.option("--role", envvar="SAGEMAKER_ROLE_ARN", show_envvar=True,
                           help="SageMaker execution role ARN (one SageMaker can assume, with access to the bucket).")


def bucket_or_default(bucket: str | None, boto_session: Any, *, create: bool = True) -> str:
    """--bucket, else samconfig.toml's DataBucketName, else the SageMaker default bucket (as the stack does),
    created unless `create` is False (a dry run). Found and created with common.aws's clients, never the SDK's
    (whose STS call ignores AWS_ENDPOINT_URL)."""
    from common.buckets import data_bucket, ensure_bucket

    choice = data_bucket(bucket, boto_session)
    if create and choice.is_default:
        ensure_bucket(boto_session.client("s3"), choice, boto_session.region_name)
    return choice.name


@train_group.command("sagemaker")
@trainer_options
@bucket_option
@click.option("--prefix", default=settings.dataset_prefix, show_default="the deployed DatasetPrefix",
              help="Where the dataset is staged in the bucket (`data_prep stage`).")
@role_option
@click.option("--instance-type", default="ml.m5.xlarge", show_default=True,
              help="CPU: 4 vCPUs (2 cores: the trainer's 2 threads), 16 GiB.")
@click.option("--spot", is_flag=True, help="Managed spot training (waits up to twice --max-run-seconds).")
@click.option("--max-run-seconds", type=click.IntRange(600, 432000), default=3600, show_default=True)
@click.option("--job-name", help="Training job name (default: scones-image-classification-<timestamp>).")
@click.option("--labels", help="Reviewed labels to add: s3://bucket/labels/ (Ground Truth manifests; their images "
                               "are read from S3 by the job).")
@click.option("--weights", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="--preset transfer: torchvision's resnet18 ImageNet weights file, uploaded beside the job's source "
                   "and read by the job (its `weights` channel); default: the job downloads them.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the job to end.")
@json_option
@aws_options
def train_sagemaker_command(members: int, epochs: int, serve_ensemble: bool, distill: float, seed: int,
                            classes: str | None, validation_fraction: float, threshold: float, preset: str,
                            input_size: int, bucket: str | None,
                            prefix: str, role: str | None, instance_type: str, spot: bool, max_run_seconds: int,
                            job_name: str | None, labels: str | None, weights: Path | None, wait: bool, as_json: bool,
                            region: str | None, profile: str | None) -> None:
    """Run this project's trainer as a SageMaker PyTorch training job (script mode) on the staged dataset: its
    artefact is the archive `data_prep package` writes (model files + code/).

    \b
    Examples:
      .venv/bin/python -m data_prep train sagemaker --role arn:aws:iam::123456789012:role/SageMakerRole
      .venv/bin/python -m data_prep train sagemaker --epochs 60 --spot --labels s3://my-bucket/labels/
      .venv/bin/python -m data_prep train sagemaker --preset transfer --epochs 10  # the job downloads the weights
      .venv/bin/python -m data_prep train sagemaker --preset transfer --weights resnet18-f37072fd.pth --epochs 10
    """
    from data_prep.training import sagemaker_jobs

    if labels and not is_s3_uri(labels):
        raise click.UsageError("on SageMaker, --labels takes s3://bucket/prefix (the training job reads S3)")
    if weights is not None and preset != "transfer":
        raise click.UsageError("--weights goes with --preset transfer")
    role = sagemaker_jobs.resolve_role(role)
    boto = aws_session(region, profile)
    account_id(boto)  # refused or expired credentials stop here, before anything is made
    job = sagemaker_jobs.TrainingJob(
        name=job_name or f"scones-image-classification-{time.strftime('%Y%m%d-%H%M%S')}", role=role,
        region=boto.region_name, staged=sagemaker_jobs.StagedData(bucket_or_default(bucket, boto), prefix),
        config=train_config(members, epochs, seed, serve_ensemble, distill, preset, input_size), threshold=threshold,
        classes=parse_classes(classes), validation_fraction=validation_fraction, labels=labels, weights=weights,
        instance_type=instance_type, spot=spot, max_run_seconds=max_run_seconds)
    sagemaker = boto.client("sagemaker")
    sagemaker_jobs.start_training(sagemaker, boto.client("s3"), job,
                                  sagemaker_jobs.training_image(boto.region_name, instance_type), announce=say)
    LAYOUT.last_training_job.parent.mkdir(parents=True, exist_ok=True)
    LAYOUT.last_training_job.write_text(job.name + "\n")
    next_step = f".venv/bin/python -m data_prep deploy new --training-job {job.name}"
    if wait:
        sagemaker_jobs.wait_for_training(sagemaker, job.name, announce=say)
    if as_json:
        print_json({"training_job": job.name, "status": "Completed" if wait else "InProgress",
                    "model_artifact": job.artifact_uri, "next": next_step})
        return
    state = "complete" if wait else "started"
    out.print(f"training job {job.name} {state}; its model: {job.artifact_uri}; next: {next_step}", markup=False,
              highlight=False)


@click.command("package")
@click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=LAYOUT.model,
              show_default=True, help="The model folder (`train local`).")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The archive to write (FILE.tar.gz).")
@json_option
def package_command(model_dir: Path, out_file: Path, as_json: bool) -> None:
    """Write model.tar.gz for SageMaker's PyTorch inference container: the model files at the root and code/
    (inference.py: the same decode, preprocess, forward and encode as `serve`; requirements.txt).

    \b
    Example:
      .venv/bin/python -m data_prep package --model-dir out/model --out out/model.tar.gz
    """
    from data_prep.packaging import package_model

    if not out_file.name.endswith(".tar.gz"):
        raise click.UsageError(f"--out {out_file}: the archive's name must end in .tar.gz")
    packaged = package_model(model_dir, out_file)
    summary = {"archive": str(packaged.archive), "archive_sha256": packaged.archive_sha256,
               "model_sha256": packaged.model_sha256, "code_sha256": packaged.code_sha256, "files": packaged.names}
    if as_json:
        print_json(summary)
        return
    out.print(f"wrote {packaged.archive} ({len(packaged.names)} files; archive sha256 {packaged.archive_sha256}; "
              f"model sha256 {packaged.model_sha256})", markup=False, highlight=False)


def model_source_options(command: F) -> F:
    """Which model to deploy: exactly one of a folder, an archive, a training job."""
    options = [
        click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
                     help="A model folder (`train local`): packaged and uploaded to s3://BUCKET/models/archives/."),
        click.option("--archive", help="A model archive: FILE.tar.gz (`data_prep package`) or s3://.../model.tar.gz; "
                                       "its checked bytes are uploaded under their sha256."),
        click.option("--training-job", help="A training job `train sagemaker` ran (its model.tar.gz)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def deploy_options(command: F) -> F:
    """What both deploy commands take: the model, the endpoint, the bucket archives go to, the role."""
    options = [click.option("--endpoint-name", default=settings.deployed_endpoint_name,
                            show_default="samconfig.toml's EndpointName, else the template's"),
               bucket_option, role_option]
    for option in reversed(options):
        command = option(command)
    return model_source_options(command)


def chosen_reference(model_dir: Path | None, archive: str | None, training_job: str | None) -> str:
    given = [str(value) for value in (model_dir, archive, training_job) if value]
    if len(given) != 1:
        raise click.UsageError("name the model to deploy with one of --model-dir DIR, --archive FILE.tar.gz|s3://... "
                               "or --training-job NAME")
    return given[0]


gate_options = [
    click.option("--gate", "gate_file", type=click.Path(path_type=Path, dir_okay=False),
                 help="The gate's promote verdict for these bytes (`data_prep evaluate --out FILE`, or the loop's "
                      "out/loop/gate.json). Required unless --no-gate."),
    click.option("--no-gate", is_flag=True, help="Deploy without a gate verdict (a first deployment, knowingly)."),
]


def with_gate(command: F) -> F:
    for option in reversed(gate_options):
        command = option(command)
    return command


class Prepared:
    """A deployment's model, checked: resolved, the archive that will ship made (a folder packaged) and gated by
    its sha256, with the role and clients, before anything is made."""

    def __init__(self, reference: str, gate_file: Path | None, no_gate: bool, role: str | None, region: str | None,
                 profile: str | None, workdir: Path, *, training_job: str | None = None) -> None:
        from common.model_archive import resolve_model
        from data_prep.training.sagemaker_jobs import resolve_role

        if (gate_file is None) == (not no_gate):
            raise click.UsageError("deploying needs the gate's verdict on the model: --gate FILE (from `data_prep "
                                   "evaluate --out FILE`, or out/loop/gate.json), or --no-gate (not both)")
        self.gate_file = gate_file
        self.gate: dict[str, Any] | None = None
        on_disk = not is_s3_uri(reference) and Path(reference).exists()
        if on_disk:  # a folder or a local archive is checked, and gated, before AWS is reached at all
            self.archive = self._checked(resolve_model(reference, workdir), workdir)
        self.boto = aws_session(region, profile)
        account_id(self.boto)  # refused or expired credentials stop here, before anything is made
        self.sagemaker, self.s3 = self.boto.client("sagemaker"), self.boto.client("s3")
        if not on_disk:
            self.archive = self._checked(resolve_model(reference, workdir, s3=self.s3, sagemaker=self.sagemaker),
                                         workdir)
        if role is None and training_job:  # the role that trained it, by default
            role = str(self.sagemaker.describe_training_job(TrainingJobName=training_job)["RoleArn"])
        self.role = resolve_role(role)

    @property
    def model(self) -> ResolvedModel:
        return self.archive.model

    def _checked(self, model: ResolvedModel, workdir: Path) -> LocalArchive:
        from data_prep.packaging import require_our_code
        from data_prep.training.evaluate import FOREIGN_CODE_REMEDY, require_promotion
        from data_prep.training.sagemaker_deploy import local_archive

        archive = local_archive(model, workdir)
        say(f"model: {model.reference} (sha256 {model.sha256}; archive sha256 {archive.sha256})")
        if self.gate_file is None:  # --no-gate: knowingly, but never code nobody scored
            require_our_code(model, FOREIGN_CODE_REMEDY + ", then deploy with --gate")
            return archive
        # a held model, or a verdict on other bytes (another model, or the same model in another archive) stops here
        self.gate = require_promotion(self.gate_file, model.sha256, archive.sha256)
        say(f"gate: promote ({self.gate_file}: {self.gate.get('images')} images; archive sha256 {archive.sha256[:12]}"
            "...)")
        return archive


@click.group("deploy")
def deploy_group() -> None:
    """Put a checked model behind the endpoint: `new` creates it (with data capture), `update` rolls a new model
    out to the live one with deployment guardrails. Either refuses a model without the gate's promote verdict
    for its bytes, unless --no-gate.

    \b
    Examples:
      .venv/bin/python -m data_prep deploy new --model-dir out/model \\
          --role arn:aws:iam::123456789012:role/SageMakerRole --no-gate
      .venv/bin/python -m data_prep deploy update --training-job scones-image-classification-20250101-120000 \\
          --gate out/gate.json
    """


@deploy_group.command("new")
@deploy_options
@click.option("--instance-type", default="ml.m5.large", show_default=True)
@click.option("--instance-count", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--autoscale-max", type=click.IntRange(1, 100), help="Enable autoscaling up to this many instances.")
@click.option("--invocations-per-instance", type=float, default=1000.0, show_default=True,
              help="Autoscaling target: invocations per instance per minute.")
@click.option("--serverless", is_flag=True,
              help="SageMaker Serverless Inference instead of instances (no data capture: needs --no-capture).")
@click.option("--memory-mb", type=click.Choice([str(m) for m in (1024, 2048, 3072, 4096, 5120, 6144)]),
              default="2048", show_default=True, help="--serverless: memory per concurrent invocation.")
@click.option("--max-concurrency", type=click.IntRange(1, 200), default=5, show_default=True,
              help="--serverless: concurrent invocations before throttling (account quota: 10 by default).")
@click.option("--no-capture", is_flag=True,
              help="Deploy without data capture: monitoring then gets nothing from this endpoint.")
@click.option("--update-samconfig", is_flag=True,
              help="Write EndpointName, DataBucketName and ModelVersion (the model's sha256) into samconfig.toml.")
@with_gate
@aws_options
def deploy_new_command(model_dir: Path | None, archive: str | None, training_job: str | None, endpoint_name: str,
                       bucket: str | None, role: str | None, instance_type: str, instance_count: int,
                       autoscale_max: int | None, invocations_per_instance: float, serverless: bool, memory_mb: str,
                       max_concurrency: int, no_capture: bool, update_samconfig: bool, gate_file: Path | None,
                       no_gate: bool, region: str | None, profile: str | None) -> None:
    """Create the endpoint: the model archive behind SageMaker's PyTorch inference container, on instances with
    data capture of 100% of requests and responses (optionally autoscaled), or with --serverless on Serverless
    Inference. The SageMaker model records the model's sha256, the archive's and the ModelVersion.

    \b
    Examples:
      .venv/bin/python -m data_prep deploy new --model-dir out/model --gate out/gate.json --autoscale-max 4
      .venv/bin/python -m data_prep deploy new --training-job scones-image-classification-20250101-120000 --no-gate
      .venv/bin/python -m data_prep deploy new --archive out/model.tar.gz --serverless --no-capture --no-gate
    """
    from data_prep.training import sagemaker_deploy as hosting_steps

    reference = chosen_reference(model_dir, archive, training_job)
    if serverless and autoscale_max:
        raise click.UsageError("--autoscale-max scales instances; a serverless endpoint scales by --max-concurrency")
    hosting = hosting_steps.Hosting(instance_type, instance_count,
                                    hosting_steps.Serverless(int(memory_mb), max_concurrency) if serverless else None,
                                    capture=not no_capture)
    hosting_steps.check_capture(hosting.serverless, hosting.capture)  # before anything is read or made
    with tempfile.TemporaryDirectory(prefix="scones-deploy-") as scratch:
        prepared = Prepared(reference, gate_file, no_gate, role, region, profile, Path(scratch),
                            training_job=training_job)
        if hosting_steps.endpoint_exists(prepared.sagemaker, endpoint_name):
            raise hosting_steps.SageMakerSetupError(
                f"endpoint {endpoint_name} exists: roll the model out with "
                "`.venv/bin/python -m data_prep deploy update`")
        bucket = bucket_or_default(bucket, prepared.boto)
        serving = hosting_steps.publish(prepared.s3, prepared.archive, bucket, announce=say)
    region_name = prepared.boto.region_name
    request = hosting_steps.create_model_request(
        hosting_steps.model_name_for(endpoint_name, serving.archive_sha256), prepared.role,
        hosting_steps.inference_image(region_name, instance_type), serving, region_name)
    hosting_steps.deploy_new(prepared.sagemaker, endpoint_name, request, hosting, bucket, announce=say)
    if autoscale_max:
        hosting_steps.enable_autoscaling(prepared.boto.client("application-autoscaling"), endpoint_name,
                                         min_instances=instance_count, max_instances=autoscale_max,
                                         invocations_per_instance=invocations_per_instance)
    if no_capture:
        say(f"endpoint {endpoint_name} has NO data capture: monitoring receives nothing from it (the stack's "
            "CaptureMissingAlarm will say so once it serves)")
    version = hosting_steps.model_version(serving.sha256)
    capture = hosting_steps.data_capture_config(bucket)["DestinationS3Uri"]
    note = "" if no_capture else f"; capture goes to {capture}/"
    out.print(f"endpoint {endpoint_name} is InService and serves model sha256 {serving.sha256} ({version}; archive "
              f"sha256 {serving.archive_sha256}){note}", markup=False, highlight=False)
    next_step(endpoint_name, bucket, version, update_samconfig)


def next_step(endpoint_name: str, bucket: str, version: str, update_samconfig: bool) -> None:
    """What the workflow stack needs now that the endpoint serves `version`: its events name the ModelVersion
    `sam deploy` baked into the state machine."""
    from data_prep.training import sagemaker_deploy as hosting_steps

    if update_samconfig:
        hosting_steps.update_samconfig(settings.SAMCONFIG_PATH, endpoint_name, bucket, model_version=version)
        out.print(f"samconfig.toml updated (ModelVersion={version}); next: make deploy (the pinned SAM CLI, in "
                  ".venv-sam, builds and deploys)", markup=False, highlight=False)
    else:
        out.print("next: " + hosting_steps.sam_deploy_command(endpoint_name, bucket, model_version=version),
                  markup=False, highlight=False)


@deploy_group.command("update")
@deploy_options
@click.option("--traffic", type=click.Choice(["canary", "linear", "all-at-once"]), default="canary", show_default=True,
              help="canary (a share first, then the rest), linear (equal steps) or all at once.")
@click.option("--canary-percent", type=click.IntRange(1, 50), default=10, show_default=True,
              help="--traffic canary: share of the new fleet that takes traffic first (at most 50%).")
@click.option("--linear-step-percent", type=click.IntRange(10, 50), default=20, show_default=True,
              help="--traffic linear: share of the new fleet turned on per step (10 to 50%).")
@click.option("--wait-seconds", type=click.IntRange(0, 3600), default=600, show_default=True,
              help="Baking period after each traffic step, while the alarms watch the new fleet.")
@click.option("--termination-wait-seconds", type=click.IntRange(0, 3600), default=300, show_default=True,
              help="How long the old fleet is kept (and can be rolled back to) after the last step.")
@click.option("--max-execution-seconds", type=click.IntRange(600, 28800),
              help="Give up (and roll back) after this long; default: the waiting plus 30 minutes.")
@click.option("--stack-name", default=settings.stack_name, show_default="samconfig.toml's stack_name",
              help="The stack whose Endpoint5xxAlarm and EndpointLatencyAlarm roll the update back.")
@click.option("--rollback-alarm", "rollback_alarm_names", multiple=True,
              help="Roll back on this CloudWatch alarm instead of the stack's (repeat, up to 10).")
@click.option("--update-samconfig", is_flag=True,
              help="Write EndpointName, DataBucketName and ModelVersion (the new model's sha256) into samconfig.toml.")
@with_gate
@aws_options
def deploy_update_command(model_dir: Path | None, archive: str | None, training_job: str | None, endpoint_name: str,
                          bucket: str | None, role: str | None, traffic: str, canary_percent: int,
                          linear_step_percent: int, wait_seconds: int, termination_wait_seconds: int,
                          max_execution_seconds: int | None, stack_name: str, rollback_alarm_names: tuple[str, ...],
                          update_samconfig: bool, gate_file: Path | None, no_gate: bool, region: str | None,
                          profile: str | None) -> None:
    """Roll a model out to the live endpoint with deployment guardrails: blue/green, traffic shifted by --traffic,
    rolled back automatically when the stack's endpoint alarms go off (exit 1 when it was rolled back). The gate
    must have judged the model against what the endpoint serves now (its archive's sha256).

    \b
    Examples:
      .venv/bin/python -m data_prep deploy update --model-dir out/loop/model --gate out/loop/gate.json
      .venv/bin/python -m data_prep deploy update --training-job scones-image-classification-20250101-120000 \\
          --gate out/gate.json --traffic linear --linear-step-percent 20 --wait-seconds 300
    """
    from data_prep.training import sagemaker_deploy as hosting_steps

    reference = chosen_reference(model_dir, archive, training_job)
    shift = hosting_steps.TrafficShift(traffic, canary_percent, linear_step_percent, wait_seconds,
                                       termination_wait_seconds, max_execution_seconds)  # checked before calls
    with tempfile.TemporaryDirectory(prefix="scones-deploy-") as scratch:
        prepared = Prepared(reference, gate_file, no_gate, role, region, profile, Path(scratch),
                            training_job=training_job)
        hosting_steps.check_updatable(prepared.sagemaker, endpoint_name, shift)
        if prepared.gate is not None and gate_file is not None:  # judged against what serves, or not rolled out
            from data_prep.training.evaluate import require_served_baseline

            served = hosting_steps.served_models(prepared.sagemaker, endpoint_name)
            require_served_baseline(prepared.gate, gate_file, endpoint_name, next(iter(served.values())))
        alarms = list(rollback_alarm_names) or hosting_steps.rollback_alarms(
            prepared.boto.client("cloudformation"), prepared.boto.client("cloudwatch"), stack_name, endpoint_name)
        bucket = bucket_or_default(bucket, prepared.boto)
        serving = hosting_steps.publish(prepared.s3, prepared.archive, bucket, announce=say)
    region_name = prepared.boto.region_name
    request = hosting_steps.create_model_request(
        hosting_steps.model_name_for(endpoint_name, serving.archive_sha256), prepared.role,
        hosting_steps.inference_image(region_name), serving, region_name)
    result = hosting_steps.update_endpoint(prepared.sagemaker, endpoint_name, request, shift, alarms, announce=say)
    if result.deployed:
        version = hosting_steps.model_version(serving.sha256)
        out.print(f"endpoint {endpoint_name} now serves {result.new_config}: model sha256 {serving.sha256} "
                  f"({version}; archive sha256 {serving.archive_sha256}; was {result.old_config})", markup=False,
                  highlight=False)
        from botocore.exceptions import ClientError

        try:
            stack_version = hosting_steps.stack_model_version(prepared.boto.client("cloudformation"), stack_name)
        except ClientError as error:  # the rollout is done: a stack we cannot read is a warning, not its verdict
            stack_version = None
            say(f"warning: stack {stack_name}'s ModelVersion could not be read ({error}): its events may still name "
                "the old model")
        if stack_version is not None and stack_version != version:
            say(f"warning: stack {stack_name}'s ModelVersion is {stack_version!r}: its events name that model, not "
                f"{version}, until the stack is deployed with ModelVersion={version}")
        next_step(endpoint_name, bucket, version, update_samconfig)
        return
    serving_config = result.old_config if result.rolled_back else result.new_config
    why = " (rolled back: an alarm went off, or the update failed)" if result.rolled_back else ""
    out.print(f"endpoint {endpoint_name} was NOT updated: it is {result.status} and serves {serving_config}{why}",
              markup=False, highlight=False)
    raise SystemExit(ExitStatus.CHECK_FAILED)
