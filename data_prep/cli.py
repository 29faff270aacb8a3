"""`python -m data_prep`: build the bicycle/motorcycle dataset, stage it in S3, train and deploy the model.

Parses arguments and displays; the steps themselves are library calls (data_prep.dataset.build,
data_prep.training, data_prep.serving). extract (requests), stage (botocore), the trainer (torch)
and the SageMaker SDK are imported inside the commands that use them: `serve` must start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from common import settings
from common.artefacts import require_folder
from common.aws import account_id, aws_options
from common.aws import session as aws_session
from common.cli import err, group_options, json_option, out, print_json, progress_bar, run_cli, terminal_for_our_lines
from common.errors import ExitStatus
from data_prep.dataset import cifar, transform
from data_prep.training.config import TrainConfig
from data_prep.training.evaluate import DEFAULT_MARGIN, DEFAULT_RESAMPLES, GATED

LAYOUT = settings.DEFAULT_LAYOUT


def parse_classes(value: str | None) -> list[str] | None:
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


def fetch(urls: tuple[str, ...], cache: Path, local_copy_hint: str) -> Path:
    from data_prep.dataset.build import fetch_archive

    with progress_bar("download", unit="bytes") as progress:
        archive, fetched = fetch_archive(urls, cache, progress=progress, log=warn, local_copy_hint=local_copy_hint)
    err.print(f"{'downloaded' if fetched else 'cached, MD5 verified'}: {archive}")
    return archive


def warn(message: str) -> None:
    err.print(message, markup=False, highlight=False)


def build(source: Path, classes: list[str] | None, dataset: Path, test_fraction: float) -> None:
    from data_prep.dataset.build import build_dataset

    with progress_bar("write PNGs", unit="images") as progress:
        description = build_dataset(source, classes, dataset, test_fraction, progress=progress, log=warn)
    out.print(f"wrote the dataset to {dataset}: {description['counts']}")


def bucket_or_default(bucket: str | None, boto_session: Any, *, create: bool = True) -> str:
    """--bucket, else samconfig.toml's DataBucketName, else the SageMaker default bucket (as the stack does),
    created unless `create` is False (a dry run)."""
    if bucket or settings.deployed_bucket():
        return str(bucket or settings.deployed_bucket())
    from data_prep.dataset.stage import default_bucket

    return default_bucket(boto_session, create=create)


def stage(dataset: Path, bucket: str | None, prefix: str, dry_run: bool, boto_session: Any,
          as_json: bool = False) -> None:
    from data_prep.dataset.build import stage_dataset

    bucket = bucket_or_default(bucket, boto_session, create=not dry_run)
    with progress_bar("upload", unit="files") as progress:
        result = stage_dataset(boto_session.client("s3"), dataset, bucket, prefix, dry_run=dry_run, progress=progress)
    if as_json:
        print_json({"destination": f"s3://{bucket}/{prefix}/", "dry_run": dry_run, "new": sorted(result.new),
                    "changed": sorted(result.changed), "unchanged": len(result.unchanged),
                    "uploaded": result.uploaded})
        return
    out.print(f"s3://{bucket}/{prefix}/: {len(result.new)} new, {len(result.changed)} changed, "
              f"{len(result.unchanged)} unchanged")
    if dry_run:
        for key in sorted(result.new + result.changed):
            out.print(f"  would upload {key} ({'new' if key in result.new else 'changed'})")
    else:
        out.print(f"uploaded {result.uploaded} files to s3://{bucket}/{prefix}/")


url_option = click.option("--url", "urls", multiple=True, default=cifar.MIRRORS, show_default=True,
                          help="Where to download CIFAR-100 from, tried in order; repeat for mirrors. "
                               "file:///path/cifar-100-python.tar.gz for a local copy.")
cache_option = click.option("--cache", type=click.Path(path_type=Path), default=LAYOUT.cache, show_default=True,
                            help="Folder for the downloaded archive (reused when its MD5 is right).")
classes_option = click.option("--classes", default=",".join(transform.DEFAULT_CLASSES), show_default=True,
                              help="Comma-separated CIFAR-100 fine label names; their order is the class index order.")
out_option = click.option("--out", type=click.Path(path_type=Path), default=LAYOUT.dataset, show_default=True,
                          help="Dataset folder: train/, test/, *.lst, manifest.csv, dataset.json.")
fraction_option = click.option("--test-fraction", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
                               help="Image folders only: share of each label held out as test (stable by path).")
bucket_option = click.option("--bucket", help="Target bucket. Default: samconfig.toml's DataBucketName when it names "
                                             "one, else the SageMaker default bucket (sagemaker-REGION-ACCOUNT).")
prefix_option = click.option("--prefix", default=settings.DATASET_PREFIX, show_default=True,
                             help="Key prefix in the bucket.")
dry_run_option = click.option("--dry-run", is_flag=True, help="List what would be uploaded; upload nothing.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@group_options
def cli() -> None:
    """Build, stage, train and deploy the bicycle-vs-motorcycle classifier (also installed as scones-data-prep).

    \b
    Typical use:
      python -m data_prep transform --source ../shared/data/cifar100_bicycle_motorcycle/train
      python -m data_prep train --local                   # out/dataset -> out/model
      python -m data_prep serve --capture out/data_capture
      python -m data_prep all --bucket my-bucket          # download, transform, upload
      python -m data_prep stage --dry-run                 # what would change in S3

    Exit status: 0 done, 1 a check failed, 2 bad usage or input, 3 AWS or the environment, 4 a bug.
    """


@cli.command("extract")
@url_option
@cache_option
def extract_command(urls: tuple[str, ...], cache: Path) -> None:
    """Download the CIFAR-100 archive (MD5-verified, cached, retried across mirrors).

    \b
    Examples:
      python -m data_prep extract
      python -m data_prep extract --url file:///data/cifar-100-python.tar.gz
    """
    fetch(urls, cache, "--url file:///path/to/cifar-100-python.tar.gz")


@cli.command("transform")
@click.option("--source", type=click.Path(path_type=Path, exists=True),
              help="A CIFAR-100 archive, or a folder of <label>/<image> files. Default: the cached archive.")
@cache_option
@classes_option
@out_option
@fraction_option
def transform_command(source: Path | None, cache: Path, classes: str, out: Path, test_fraction: float) -> None:
    """Write 32x32 RGB PNGs, SageMaker .lst files and a manifest for the chosen classes.

    \b
    Examples:
      python -m data_prep transform                       # the archive `extract` cached
      python -m data_prep transform --source ../shared/data/cifar100_bicycle_motorcycle/train
      python -m data_prep transform --classes bicycle,motorcycle,tractor
    """
    build(source or cache / cifar.ARCHIVE_NAME, parse_classes(classes), out, test_fraction)


@cli.command("stage")
@click.option("--dataset", type=click.Path(path_type=Path, exists=True, file_okay=False), default=LAYOUT.dataset,
              show_default=True)
@bucket_option
@prefix_option
@dry_run_option
@json_option
@aws_options
def stage_command(dataset: Path, bucket: str | None, prefix: str, dry_run: bool, as_json: bool, region: str | None,
                  profile: str | None) -> None:
    """Upload the dataset to s3://BUCKET/PREFIX/, skipping files already there with the same content.

    \b
    Examples:
      python -m data_prep stage --dry-run                 # list what would be uploaded
      python -m data_prep stage --bucket my-bucket --region eu-west-1 --profile dev
    """
    stage(dataset, bucket, prefix, dry_run, aws_session(region, profile), as_json)


@cli.command("all")
@url_option
@cache_option
@click.option("--source", type=click.Path(path_type=Path, exists=True),
              help="Use this archive or image folder instead of downloading.")
@classes_option
@out_option
@fraction_option
@bucket_option
@prefix_option
@dry_run_option
@aws_options
def all_command(urls: tuple[str, ...], cache: Path, source: Path | None, classes: str, out: Path,
                test_fraction: float, bucket: str | None, prefix: str, dry_run: bool, region: str | None,
                profile: str | None) -> None:
    """extract, transform and stage in one go (AWS credentials and region are checked first).

    \b
    Examples:
      python -m data_prep all --bucket my-bucket
      python -m data_prep all --source ../shared/data/cifar100_bicycle_motorcycle/train --dry-run
    """
    boto_session = aws_session(region, profile)
    build(source or fetch(urls, cache, "--source /path/to/cifar-100-python.tar.gz"), parse_classes(classes), out,
          test_fraction)
    stage(out, bucket, prefix, dry_run, boto_session)


@cli.command("train")
@click.option("--local", is_flag=True, help="Train on this machine's CPU with PyTorch instead of on SageMaker.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=LAYOUT.dataset,
              show_default=True, help="--local: data_prep's dataset layout, or a folder of <label>/<image> files.")
@click.option("--model-dir", type=click.Path(path_type=Path), default=LAYOUT.model, show_default=True,
              help="--local: where model.onnx, metadata.json and validation_report.json go.")
@click.option("--members", type=click.IntRange(1, 16), default=TrainConfig.members, show_default=True,
              help="--local: folds; each fold network scores the fold it never saw, to calibrate the temperature.")
@click.option("--epochs", type=click.IntRange(1, 1000), default=TrainConfig.epochs, show_default=True)
@click.option("--serve-ensemble", is_flag=True,
              help="--local: serve the fold networks averaged (about +1.5 points here, 3x the latency) instead of one "
                   "network trained on all the data.")
@click.option("--distill", type=click.FloatRange(0.0, 1.0), default=TrainConfig.distill, show_default=True,
              help="--local: weight of the fold networks' soft targets for the served network (0: plain training).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--classes", help="--local: comma-separated class names; their order is the class index order (as for "
                                "transform). Default: the dataset's classes, or every sub-folder with images.")
@click.option("--validation-fraction", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
              help="--local with an image folder: share held out (stable by path) for the validation report.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0, min_open=True), default=settings.confidence_threshold,
              show_default="the template's ConfidenceThreshold",
              help="Confidence threshold the report measures coverage and precision at.")
@bucket_option
@prefix_option
@click.option("--role", envvar="SAGEMAKER_ROLE_ARN", help="SageMaker execution role ARN (or SAGEMAKER_ROLE_ARN).")
@click.option("--instance-type", default="ml.p3.2xlarge", show_default=True)
@click.option("--spot", is_flag=True, help="Use managed spot training.")
@click.option("--job-name", help="Training job name (default: scones-image-classification-<timestamp>).")
@click.option("--preset", type=click.Choice(["auto", "transfer", "scratch"]), default="auto", show_default=True,
              help="On SageMaker: transfer = fine-tune an ImageNet-pretrained ResNet-50 at 224x224 "
                   "(image_classification_transfer.json); scratch = the 32x32 network from scratch "
                   "(image_classification.json); auto = transfer when it fits the staged data.")
@click.option("--labels", help="Reviewed images to add to the training set: a Ground Truth manifest, a folder of them "
                               "(e.g. out/bucket/labels/) or s3://bucket/labels/ (SageMaker: s3:// only).")
@click.option("--bucket-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="--local --labels: a folder mirroring the bucket the manifests' source-refs point into (default: "
                   "the folder holding the manifests' labels/ folder, then S3).")
@json_option
@aws_options
def train_command(local: bool, data_dir: Path, model_dir: Path, members: int, epochs: int, serve_ensemble: bool,
                  distill: float, seed: int, classes: str | None, validation_fraction: float, threshold: float,
                  bucket: str | None, prefix: str, role: str | None, instance_type: str, spot: bool,
                  job_name: str | None, preset: str, labels: str | None, bucket_dir: Path | None, as_json: bool,
                  region: str | None, profile: str | None) -> None:
    """Train the classifier: on SageMaker (built-in algorithm, staged data) or, with --local, on this CPU.

    \b
    Examples:
      python -m data_prep train --local                   # out/dataset -> out/model
      python -m data_prep train --local --data-dir photos/ --classes bicycle,motorcycle --epochs 10
      python -m data_prep train --local --labels out/bucket/labels/      # add the reviewed images
      python -m data_prep train --role arn:aws:iam::123456789012:role/SageMakerRole --preset transfer --spot
    """
    from common.artefacts import is_s3_uri
    from common.aws import lazy_client

    if bucket_dir is not None and not (local and labels):
        raise click.UsageError("--bucket-dir goes with --local --labels")
    if local:
        from data_prep.training.local import train_local

        require_folder(data_dir, "build the dataset with `python -m data_prep transform`, or pass --data-dir")
        # S3 only when a manifest or image is not on disk: offline labels need no AWS setup
        s3 = lazy_client("s3", region, profile) if labels else None
        config = TrainConfig(members=members, epochs=epochs, seed=seed, serve_ensemble=serve_ensemble, distill=distill)
        with terminal_for_our_lines(model_dir / "train.log") as log, \
                progress_bar("training", unit="epochs") as progress:
            metrics = train_local(data_dir, model_dir, config, threshold=threshold,
                                  validation_fraction=validation_fraction, progress=progress,
                                  classes=parse_classes(classes), log=warn, labels=labels, bucket_dir=bucket_dir,
                                  s3=s3)
        if log.note():
            err.print(log.note(), markup=False, highlight=False)
        from common.artefacts import read_model_metadata

        used = read_model_metadata(model_dir).get("reviewed_labels") if labels else None
        if as_json:
            print_json({"model_dir": str(model_dir), "metrics": metrics, "reviewed_labels": used})
            return
        out.print(f"model written to {model_dir}: {metrics}", markup=False, highlight=False)
        if used is not None:
            out.print(f"reviewed images used: {used['used']} from {len(used['manifests'])} manifest(s) "
                      f"({used['duplicates_of_training']} already in the training set, {used['unreadable']} "
                      f"unreadable, {used['unknown_class']} of unknown classes)", markup=False, highlight=False)
        return
    if labels and not is_s3_uri(labels):
        raise click.UsageError("on SageMaker, --labels takes s3://bucket/prefix (the training job reads S3)")
    from data_prep.training import sagemaker_jobs

    boto_session = aws_session(region, profile)
    account_id(boto_session)  # refused or expired credentials stop here, before the SDK is loaded
    session = sagemaker_jobs.sagemaker_session(boto_session)
    staged = sagemaker_jobs.StagedData(bucket_or_default(bucket, boto_session), prefix)
    name = sagemaker_jobs.train(session, sagemaker_jobs.resolve_role(role, session), staged,
                                instance_type=instance_type, spot=spot, job_name=job_name, preset=preset,
                                announce=err.print, labels=labels)
    LAYOUT.last_training_job.parent.mkdir(parents=True, exist_ok=True)
    LAYOUT.last_training_job.write_text(name + "\n")
    if as_json:
        print_json({"training_job": name, "next": f"python -m data_prep deploy --training-job {name}"})
        return
    out.print(f"training job {name} complete; next: python -m data_prep deploy --training-job {name}")


def training_job_to_deploy(training_job: str | None) -> str:
    """--training-job, or the last job `train` recorded in the layout."""
    last = LAYOUT.last_training_job
    job = training_job or (last.read_text().strip() if last.exists() else None)
    if not job:
        raise click.UsageError(f"no --training-job given and no previous `train` recorded in {last}")
    return job


@cli.command("deploy")
@click.option("--training-job",
              help=f"Training job to deploy (default: the last one, from {LAYOUT.last_training_job}).")
@click.option("--endpoint-name", default=settings.deployed_endpoint_name,
              show_default="samconfig.toml's EndpointName, else the template's")
@bucket_option
@click.option("--instance-type", default="ml.m5.large", show_default=True)
@click.option("--instance-count", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--autoscale-max", type=click.IntRange(1, 100), help="Enable autoscaling up to this many instances.")
@click.option("--invocations-per-instance", type=float, default=1000.0, show_default=True,
              help="Autoscaling target: invocations per instance per minute.")
@click.option("--update-samconfig", is_flag=True,
              help="Write EndpointName, DataBucketName and ModelVersion (the training job) into samconfig.toml.")
@click.option("--serverless", is_flag=True,
              help="SageMaker Serverless Inference instead of instances (no data capture: needs --no-capture).")
@click.option("--memory-mb", type=click.Choice([str(m) for m in (1024, 2048, 3072, 4096, 5120, 6144)]),
              default="2048", show_default=True, help="--serverless: memory per concurrent invocation.")
@click.option("--max-concurrency", type=click.IntRange(1, 200), default=5, show_default=True,
              help="--serverless: concurrent invocations before throttling (account quota: 10 by default).")
@click.option("--no-capture", is_flag=True,
              help="Deploy without data capture: monitoring then gets nothing from this endpoint.")
@click.option("--update", is_flag=True,
              help="Update the live endpoint to the job's model with deployment guardrails: blue/green, traffic "
                   "shifted by --traffic, rolled back automatically when the stack's endpoint alarms go off.")
@click.option("--traffic", type=click.Choice(["canary", "linear", "all-at-once"]), default="canary", show_default=True,
              help="--update: canary (a share first, then the rest), linear (equal steps) or all at once.")
@click.option("--canary-percent", type=click.IntRange(1, 50), default=10, show_default=True,
              help="--update --traffic canary: share of the new fleet that takes traffic first (at most 50%).")
@click.option("--linear-step-percent", type=click.IntRange(10, 50), default=20, show_default=True,
              help="--update --traffic linear: share of the new fleet turned on per step (10 to 50%).")
@click.option("--wait-seconds", type=click.IntRange(0, 3600), default=600, show_default=True,
              help="--update: baking period after each traffic step, while the alarms watch the new fleet.")
@click.option("--termination-wait-seconds", type=click.IntRange(0, 3600), default=300, show_default=True,
              help="--update: how long the old fleet is kept (and can be rolled back to) after the last step.")
@click.option("--max-execution-seconds", type=click.IntRange(600, 28800),
              help="--update: give up (and roll back) after this long; default: the waiting plus 30 minutes.")
@click.option("--stack-name", default=settings.stack_name, show_default="samconfig.toml's stack_name",
              help="--update: the stack whose Endpoint5xxAlarm and EndpointLatencyAlarm roll the update back.")
@click.option("--gate", "gate_file", type=click.Path(path_type=Path, dir_okay=False),
              help="--update: the gate's verdict on this model (`data_prep evaluate --out FILE`, or the loop's "
                   "out/loop/gate.json); only promote rolls out. Required with --update unless --no-gate.")
@click.option("--no-gate", is_flag=True,
              help="--update: roll out without a gate verdict, on the rollback alarms alone (a model the local gate "
                   "cannot score, such as one the built-in algorithm trained).")
@click.option("--rollback-alarm", "rollback_alarm_names", multiple=True,
              help="--update: roll back on this CloudWatch alarm instead of the stack's (repeat, up to 10).")
@aws_options
def deploy_command(training_job: str | None, endpoint_name: str, bucket: str | None, instance_type: str,
                   instance_count: int, autoscale_max: int | None, invocations_per_instance: float,
                   update_samconfig: bool, serverless: bool, memory_mb: str, max_concurrency: int,
                   no_capture: bool, update: bool, traffic: str, canary_percent: int, linear_step_percent: int,
                   wait_seconds: int, termination_wait_seconds: int, max_execution_seconds: int | None,
                   stack_name: str, gate_file: Path | None, no_gate: bool, rollback_alarm_names: tuple[str, ...],
                   region: str | None, profile: str | None) -> None:
    """Deploy a trained model: on instances with data capture of 100% of requests and responses (optionally
    autoscaled), or with --serverless on SageMaker Serverless Inference; with --update, roll it out to the live
    endpoint with deployment guardrails (exit 1 when it was rolled back).

    \b
    Examples:
      python -m data_prep deploy                          # the last `train` job, samconfig.toml's EndpointName
      python -m data_prep deploy --training-job scones-image-classification-20250101-120000 --autoscale-max 4
      python -m data_prep deploy --serverless --no-capture --region eu-west-1
      python -m data_prep deploy --update --gate out/loop/gate.json --traffic canary --canary-percent 10
    """
    from data_prep.training import sagemaker_jobs

    if update:
        if serverless or autoscale_max or update_samconfig:
            raise click.UsageError("--update keeps the live endpoint's variant, instances and capture: it takes no "
                                   "--serverless, --autoscale-max or --update-samconfig")
        if (gate_file is None) == (not no_gate):
            raise click.UsageError("--update needs the gate's verdict on the model: --gate FILE (from `data_prep "
                                   "evaluate --out FILE`, or out/loop/gate.json), or --no-gate to roll out on the "
                                   "rollback alarms alone (not both)")
        if gate_file is not None:
            from data_prep.training.evaluate import require_promotion

            table = require_promotion(gate_file)  # a held model stops here, before any AWS call
            err.print(f"gate: promote ({gate_file}: {table.get('images')} images)", markup=False, highlight=False)
        shift = sagemaker_jobs.TrafficShift(traffic, canary_percent, linear_step_percent, wait_seconds,
                                            termination_wait_seconds, max_execution_seconds)  # checked before calls
        roll_out(training_job, endpoint_name, shift, stack_name, list(rollback_alarm_names), region, profile)
        return
    if serverless and autoscale_max:
        raise click.UsageError("--autoscale-max scales instances; a serverless endpoint scales by --max-concurrency")
    options = sagemaker_jobs.Serverless(int(memory_mb), max_concurrency) if serverless else None
    sagemaker_jobs.check_capture(options, capture=not no_capture)  # before anything is created
    job = training_job_to_deploy(training_job)
    boto_session = aws_session(region, profile)
    account_id(boto_session)  # refused or expired credentials stop here, before the SDK is loaded
    session = sagemaker_jobs.sagemaker_session(boto_session)
    bucket = bucket_or_default(bucket, boto_session)
    sagemaker_jobs.deploy(session, job, endpoint_name, bucket, instance_type=instance_type,
                          instance_count=instance_count, serverless=options, capture=not no_capture)
    if autoscale_max:
        sagemaker_jobs.enable_autoscaling(boto_session.client("application-autoscaling"), endpoint_name,
                                          min_instances=instance_count, max_instances=autoscale_max,
                                          invocations_per_instance=invocations_per_instance)
    if no_capture:
        err.print(f"endpoint {endpoint_name} has NO data capture: monitoring receives nothing from it (the stack's "
                  "CaptureMissingAlarm will say so once it serves)")
    out.print(f"endpoint {endpoint_name} is InService" +
              ("" if no_capture else f"; capture goes to s3://{bucket}/data_capture/"))
    if update_samconfig:
        sagemaker_jobs.update_samconfig(settings.SAMCONFIG_PATH, endpoint_name, bucket, model_version=job)
        out.print("samconfig.toml updated; next: sam build && sam deploy")
    else:
        out.print("next: " + sagemaker_jobs.sam_deploy_command(endpoint_name, bucket, model_version=job))


def roll_out(training_job: str | None, endpoint_name: str, shift: Any, stack_name: str, alarms: list[str],
             region: str | None, profile: str | None) -> None:
    from data_prep.training import sagemaker_jobs

    job = training_job_to_deploy(training_job)
    boto = aws_session(region, profile)
    account_id(boto)  # refused or expired credentials stop here, before the SDK is loaded
    from sagemaker import image_uris

    alarms = alarms or sagemaker_jobs.rollback_alarms(boto.client("cloudformation"), boto.client("cloudwatch"),
                                                      stack_name, endpoint_name)
    result = sagemaker_jobs.update_endpoint(
        boto.client("sagemaker"), endpoint_name, job, image_uris.retrieve(sagemaker_jobs.ALGORITHM, boto.region_name),
        shift, alarms, announce=err.print)
    if result.deployed:
        out.print(f"endpoint {endpoint_name} now serves {result.new_config} (was {result.old_config})")
        return
    serving = result.old_config if result.rolled_back else result.new_config
    why = " (rolled back: an alarm went off, or the update failed)" if result.rolled_back else ""
    out.print(f"endpoint {endpoint_name} was NOT updated: it is {result.status} and serves {serving}{why}")
    raise SystemExit(ExitStatus.CHECK_FAILED)


def print_comparison(comparison: dict[str, Any], new_model: Path, baseline_model: Path) -> None:
    from rich.table import Table

    from data_prep.training.evaluate import table_rows

    table = Table(title=f"{comparison['images']} images, threshold {comparison['threshold']}: "
                        f"NEW {new_model} against OLD {baseline_model}")
    for column in ("metric", "NEW", "OLD", "NEW - OLD", f"{comparison['bootstrap']['level']:.0%} interval", "gate"):
        table.add_column(column)
    for row in table_rows(comparison):
        table.add_row(row["metric"], row["new"], row["baseline"], row["difference"], row["interval"], row["gate"])
    out.print(table)
    if comparison.get("traffic"):
        from data_prep.training.evaluate import traffic_rows, traffic_title

        live = Table(title=traffic_title(comparison))
        for column in ("metric", "NEW", "OLD", "NEW - OLD", "interval", "gate"):
            live.add_column(column)
        for row in traffic_rows(comparison) or []:
            live.add_row(row["metric"], row["new"], row["baseline"], row["difference"], row["interval"], row["gate"])
        out.print(live)


@cli.command("evaluate")
@click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="NEW: the model that would be promoted.")
@click.option("--baseline-model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="OLD: the model serving now.")
@click.option("--data-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="Evaluation images: a dataset folder (its --split) or a folder of <label>/<image> files. Keep "
                   "them out of both models' training.")
@click.option("--split", default="test", show_default=True, help="Which split of a dataset folder to score.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0, min_open=True), default=settings.confidence_threshold,
              show_default="the template's ConfidenceThreshold", help="T: coverage and precision are measured at it.")
@click.option("--margin", type=click.FloatRange(0.0, 1.0), default=DEFAULT_MARGIN, show_default=True,
              help="NEW is also held when its accuracy or precision at T is lower by more than this.")
@click.option("--resamples", type=click.IntRange(100, 100_000), default=DEFAULT_RESAMPLES, show_default=True,
              help="Paired bootstrap resamples of the images.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), default=LAYOUT.root / "gate.json",
              show_default=True, help="The table and the verdict as JSON.")
@click.option("--audits", "audits_source", metavar="BUCKET",
              help="Also judge both models on the live traffic people labelled: s3://bucket or a folder that mirrors "
                   "one (OUT/bucket), its audit/ and review/ records and labels/. Each audit stands for 1/AuditRate "
                   "confident decisions, each labelled low-confidence item for its share of those: an unbiased "
                   "sample, not only the hard cases. Keep these images out of NEW's training.")
@json_option
@aws_options
def evaluate_command(model_dir: Path, baseline_model_dir: Path, data_dir: Path, split: str, threshold: float,
                     margin: float, resamples: int, seed: int, out_file: Path, audits_source: str | None, as_json: bool,
                     region: str | None, profile: str | None) -> None:
    """Gate: NEW against OLD on the same images. Exit 0 promote (NEW is not worse on accuracy nor on precision at
    T), 1 hold (it is), 2 when the check cannot run (class sets differ, no images).

    \b
    NEW is worse on a metric when the 95% paired-bootstrap interval of NEW - OLD lies below 0, or when
    NEW - OLD is below -MARGIN. Coverage and log loss are reported, not gated.

    \b
    Examples:
      python -m data_prep evaluate --model-dir out/model-new --baseline-model-dir out/model --data-dir out/dataset
      python -m data_prep evaluate --model-dir out/model-new --baseline-model-dir out/model --data-dir photos/ --json
      python -m data_prep evaluate --model-dir out/loop/model --baseline-model-dir out/model --data-dir out/dataset \\
          --audits out/bucket
    """
    from common.artefacts import is_s3_uri, model_class_names, write_json
    from data_prep.training.evaluate import GateConfig, gate, traffic_from_bucket

    config = GateConfig(threshold=threshold, resamples=resamples, seed=seed, margin=margin)
    traffic = None
    if audits_source is not None:
        s3 = aws_session(region, profile).client("s3") if is_s3_uri(audits_source) else None
        traffic = traffic_from_bucket(audits_source, model_class_names(model_dir), s3=s3, log=warn)
    with progress_bar("comparing", unit="resamples") as progress:
        comparison = gate(model_dir, baseline_model_dir, data_dir, config, split=split, progress=progress, log=warn,
                          traffic=traffic)
    table = comparison.as_dict()
    write_json(out_file, table)
    verdict = ("PROMOTE: NEW is not worse on " + " nor on ".join(GATED) if comparison.promote
               else "HOLD: NEW is worse on " + ", ".join(comparison.worse_on))
    if as_json:
        print_json({**table, "table_file": str(out_file)})
        err.print(f"{verdict} (table: {out_file})", markup=False, highlight=False)
    else:
        print_comparison(table, model_dir, baseline_model_dir)
        out.print(f"{verdict} (table: {out_file})", markup=False, highlight=False)
    if not comparison.promote:
        raise SystemExit(ExitStatus.CHECK_FAILED)


@cli.command("ground-truth")
@click.option("--dataset", type=click.Path(path_type=Path, exists=True, file_okay=False), default=LAYOUT.dataset,
              show_default=True, help="A dataset folder (its manifest.csv holds the true labels).")
@click.option("--split", default="test", show_default=True)
@click.option("--bucket", default=settings.OFFLINE_BUCKET, show_default=True,
              help="The bucket the images are staged in (the offline run's, by default).")
@click.option("--prefix", default="", show_default=True,
              help="Their key prefix there (`stage` uses scones-image-classification; the offline run none).")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), required=True)
def ground_truth_command(dataset: Path, split: str, bucket: str, prefix: str, out_file: Path) -> None:
    """Write a split's true labels as a Ground Truth manifest: what perfect reviewers would have written (for
    the offline loop's demo: `python -m workflow run --loop-labels FILE`).

    \b
    Example:
      python -m data_prep ground-truth --out out/perfect-labels.manifest
    """
    from common.artefacts import dataset_ground_truth, write_ground_truth_manifest

    labels = dataset_ground_truth(dataset, split, bucket, prefix)
    write_ground_truth_manifest(out_file, labels)
    out.print(f"wrote {len(labels)} labels to {out_file}", markup=False, highlight=False)


@cli.command("serve")
@click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=LAYOUT.model,
              show_default=True, help="The model served (with a challenger: the champion).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free port.")
@click.option("--endpoint-name", default=settings.endpoint_name, show_default="the template's EndpointName",
              help="The only name /endpoints/{name}/invocations answers (others get SageMaker's ValidationError); "
                   "capture files go under it.")
@click.option("--capture", "capture_destination",
              help="Data capture destination: a folder or s3://bucket/prefix (refused at start when unwritable).")
@click.option("--sampling-percentage", type=click.IntRange(0, 100), default=100, show_default=True)
@click.option("--challenger-model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Serve a second production variant beside --model-dir (variant names from each metadata.json's "
                   "variant_name, else champion / challenger).")
@click.option("--challenger-weight", type=click.FloatRange(0.0, 1.0), default=0.1, show_default=True,
              help="Share of the traffic routed to the challenger (the champion gets the rest); "
                   "X-Amzn-SageMaker-Target-Variant overrides it per request.")
@click.option("--seed", type=int, help="Seed the traffic split (reproducible routing, for tests).")
@aws_options
def serve_command(model_dir: Path, host: str, port: int, endpoint_name: str, capture_destination: str | None,
                  sampling_percentage: int, challenger_model_dir: Path | None, challenger_weight: float,
                  seed: int | None, region: str | None, profile: str | None) -> None:
    """Serve the local model with SageMaker's container contract and runtime API (Ctrl-C stops it).

    \b
    Examples:
      python -m data_prep serve                           # out/model on http://127.0.0.1:8080
      python -m data_prep serve --port 0 --capture out/data_capture
      python -m data_prep serve --capture s3://my-data-bucket/data_capture --region eu-west-1 --profile dev
      python -m data_prep serve --challenger-model-dir out/model-b --challenger-weight 0.2
    """
    from data_prep.serving.server import serve

    given = click.get_current_context().get_parameter_source("challenger_weight")
    if challenger_model_dir is None and given == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--challenger-weight needs --challenger-model-dir")

    from common.artefacts import is_s3_uri

    s3 = aws_session(region, profile).client("s3") if capture_destination and is_s3_uri(capture_destination) else None
    serve(model_dir, host=host, port=port, endpoint_name=endpoint_name, capture_destination=capture_destination,
          sampling_percentage=sampling_percentage, challenger_model_dir=challenger_model_dir,
          challenger_weight=challenger_weight, seed=seed, announce=err.print, capture_s3_client=s3)


def main() -> None:
    run_cli(cli, "python -m data_prep")
