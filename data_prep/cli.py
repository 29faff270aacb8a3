"""`python -m data_prep`: build the bicycle/motorcycle dataset, stage it in S3, train and deploy the model."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from data_prep import cifar, transform
from data_prep.errors import DataPrepError, run_cli
from data_prep.model.config import CONFIDENCE_THRESHOLD, TrainConfig

# extract (requests), stage (botocore), the trainer (torch) and the SageMaker SDK are imported inside the
# commands that use them: `serve` must start in well under a second.

console = Console(stderr=True)
DEFAULT_CACHE = Path("data/cache")
DEFAULT_DATASET = Path("data/dataset")
DEFAULT_PREFIX = "scones-image-classification"
LAST_TRAINING_JOB_NAME = "data/sagemaker/last_training_job.txt"
LAST_TRAINING_JOB = Path(LAST_TRAINING_JOB_NAME)


def parse_classes(value: str | None) -> list[str] | None:
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


@contextmanager
def counting_progress(description: str, total: int) -> Iterator[tuple[Progress, TaskID]]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield progress, progress.add_task(description, total=total)


def run_extract(urls: Sequence[str], cache: Path) -> Path:
    from data_prep import extract

    archive = cache / cifar.ARCHIVE_NAME
    columns = (TextColumn("download"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("download", total=None)
        fetched = extract.download(
            urls, archive, cifar.ARCHIVE_MD5,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
            log=lambda message: console.print(f"[yellow]{message}[/]"),
        )
    console.print(f"{'downloaded' if fetched else 'cached, MD5 verified'}: {archive}")
    return archive


def run_transform(source: Path, classes: list[str] | None, out: Path, test_fraction: float) -> dict[str, object]:
    if source.is_dir():
        examples = transform.folder_examples(source, classes, test_fraction)
        names = classes or sorted(p.name for p in source.iterdir() if p.is_dir())
    elif source.is_file():
        names = classes or list(transform.DEFAULT_CLASSES)
        with tempfile.TemporaryDirectory(prefix="cifar-") as scratch:
            transform.safe_extract(source, Path(scratch))
            examples = transform.cifar_examples(Path(scratch), names)
    else:
        raise click.BadParameter(f"{source} is neither a CIFAR-100 archive nor a folder of <label>/ images",
                                 param_hint="--source")
    for split in transform.SPLITS:  # stale files from an earlier run with other classes must not linger
        shutil.rmtree(out / split, ignore_errors=True)
    with counting_progress("write PNGs", len(examples)) as (progress, task):
        description = transform.write_dataset(examples, names, out, source=str(source),
                                              progress=lambda n: progress.advance(task, n))
    console.print(f"wrote {len(examples)} images to {out}: {description['counts']}")
    return description


def run_stage(dataset: Path, bucket: str | None, prefix: str, dry_run: bool) -> None:
    import boto3

    from data_prep import stage

    s3 = boto3.client("s3")
    bucket = bucket or stage.default_bucket()
    staged = stage.plan(s3, dataset, bucket, prefix)
    console.print(f"s3://{bucket}/{prefix}/: {len(staged.new)} new, {len(staged.changed)} changed, "
                  f"{len(staged.unchanged)} unchanged")
    if dry_run:
        for key in staged.to_upload:
            console.print(f"  would upload {key} ({'new' if key in staged.new else 'changed'})")
        return
    with counting_progress("upload", len(staged.to_upload)) as (progress, task):
        uploaded = stage.upload(s3, dataset, bucket, prefix, staged.to_upload,
                                progress=lambda n: progress.advance(task, n))
    console.print(f"uploaded {uploaded} files to s3://{bucket}/{prefix}/")


url_option = click.option("--url", "urls", multiple=True, default=cifar.MIRRORS, show_default=True,
                          help="Where to download CIFAR-100 from, tried in order; repeat for mirrors. "
                               "file:///path/cifar-100-python.tar.gz for a local copy.")
cache_option = click.option("--cache", type=click.Path(path_type=Path), default=DEFAULT_CACHE, show_default=True,
                            help="Folder for the downloaded archive (reused when its MD5 is right).")
classes_option = click.option("--classes", default=",".join(transform.DEFAULT_CLASSES), show_default=True,
                              help="Comma-separated CIFAR-100 fine label names; their order is the class index order.")
out_option = click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_DATASET, show_default=True,
                          help="Dataset folder: train/, test/, *.lst, manifest.csv, dataset.json.")
fraction_option = click.option("--test-fraction", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
                               help="Image folders only: share of each label held out as test (stable by path).")
bucket_option = click.option("--bucket", help="Target bucket. Default: the SageMaker session's default bucket.")
prefix_option = click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key prefix in the bucket.")
dry_run_option = click.option("--dry-run", is_flag=True, help="List what would be uploaded; upload nothing.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Build, stage, train and deploy the bicycle-vs-motorcycle classifier.

    \b
    Typical use:
      python -m data_prep all --bucket my-bucket          # download, transform, upload
      python -m data_prep transform --source ../shared/data/cifar100_bicycle_motorcycle/train
      python -m data_prep stage --dry-run                 # what would change in S3
    """


@cli.command("extract")
@url_option
@cache_option
def extract_command(urls: tuple[str, ...], cache: Path) -> None:
    """Download the CIFAR-100 archive (MD5-verified, cached, retried across mirrors)."""
    run_extract(urls, cache)


@cli.command("transform")
@click.option("--source", type=click.Path(path_type=Path, exists=True),
              help="A CIFAR-100 archive, or a folder of <label>/<image> files. Default: the cached archive.")
@cache_option
@classes_option
@out_option
@fraction_option
def transform_command(source: Path | None, cache: Path, classes: str, out: Path, test_fraction: float) -> None:
    """Write 32x32 RGB PNGs, SageMaker .lst files and a manifest for the chosen classes."""
    run_transform(source or cache / cifar.ARCHIVE_NAME, parse_classes(classes), out, test_fraction)


@cli.command("stage")
@click.option("--dataset", type=click.Path(path_type=Path, exists=True, file_okay=False), default=DEFAULT_DATASET,
              show_default=True)
@bucket_option
@prefix_option
@dry_run_option
def stage_command(dataset: Path, bucket: str | None, prefix: str, dry_run: bool) -> None:
    """Upload the dataset to s3://BUCKET/PREFIX/, skipping files already there with the same content."""
    run_stage(dataset, bucket, prefix, dry_run)


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
def all_command(urls: tuple[str, ...], cache: Path, source: Path | None, classes: str, out: Path,
                test_fraction: float, bucket: str | None, prefix: str, dry_run: bool) -> None:
    """extract, transform and stage in one go."""
    run_transform(source or run_extract(urls, cache), parse_classes(classes), out, test_fraction)
    run_stage(out, bucket, prefix, dry_run)


def run_train_local(data_dir: Path, model_dir: Path, config: TrainConfig, *, threshold: float = CONFIDENCE_THRESHOLD,
                    validation_fraction: float = 0.2) -> dict[str, Any]:
    """`train --local` with an epochs progress bar; returns the validation metrics."""
    from data_prep.model.local import train_local

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("training", total=None)
        return train_local(
            data_dir, model_dir, config, threshold=threshold, validation_fraction=validation_fraction,
            progress=lambda stage, step, total: progress.update(task, description=f"training {stage}",
                                                                completed=step, total=total),
        )


@cli.command("train")
@click.option("--local", is_flag=True, help="Train on this machine's CPU with PyTorch instead of on SageMaker.")
@click.option("--data-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=DEFAULT_DATASET,
              show_default=True, help="--local: data_prep's dataset layout, or a folder of <label>/<image> files.")
@click.option("--model-dir", type=click.Path(path_type=Path), default=Path("data/model"), show_default=True,
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
@click.option("--validation-fraction", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
              help="--local with an image folder: share held out (stable by path) for the validation report.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0, min_open=True), default=CONFIDENCE_THRESHOLD,
              show_default=True, help="Confidence threshold the report measures coverage and precision at.")
@bucket_option
@prefix_option
@click.option("--role", envvar="SAGEMAKER_ROLE_ARN", help="SageMaker execution role ARN (or SAGEMAKER_ROLE_ARN).")
@click.option("--instance-type", default="ml.p3.2xlarge", show_default=True)
@click.option("--spot", is_flag=True, help="Managed spot training (cheaper; may wait for capacity).")
@click.option("--job-name", help="Training job name (default: scones-image-classification-<time>).")
def train_command(local: bool, data_dir: Path, model_dir: Path, members: int, epochs: int, serve_ensemble: bool,
                  distill: float, seed: int,
                  validation_fraction: float, threshold: float, bucket: str | None, prefix: str, role: str | None,
                  instance_type: str, spot: bool, job_name: str | None) -> None:
    """Train the classifier: on SageMaker (built-in algorithm, staged data) or, with --local, on this CPU."""
    if local:
        config = TrainConfig(members=members, epochs=epochs, seed=seed, serve_ensemble=serve_ensemble, distill=distill)
        metrics = run_train_local(data_dir, model_dir, config, threshold=threshold,
                                  validation_fraction=validation_fraction)
        console.print(f"model written to {model_dir}: {metrics}")
        return
    import sagemaker

    from data_prep import sagemaker_jobs

    session = sagemaker.Session()
    staged = sagemaker_jobs.StagedData(bucket or session.default_bucket(), prefix)
    name = sagemaker_jobs.train(session, sagemaker_jobs.resolve_role(role), staged, instance_type=instance_type,
                                spot=spot, job_name=job_name)
    LAST_TRAINING_JOB.parent.mkdir(parents=True, exist_ok=True)
    LAST_TRAINING_JOB.write_text(name + "\n")
    console.print(f"training job {name} complete; next: python -m data_prep deploy --training-job {name}")


@cli.command("deploy")
@click.option("--training-job", help=f"Training job to deploy (default: the last one, from {LAST_TRAINING_JOB_NAME}).")
@click.option("--endpoint-name", default="scones-image-classifier", show_default=True)
@bucket_option
@click.option("--instance-type", default="ml.m5.large", show_default=True)
@click.option("--instance-count", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--autoscale-max", type=click.IntRange(1, 100), help="Enable autoscaling up to this many instances.")
@click.option("--invocations-per-instance", type=float, default=1000.0, show_default=True,
              help="Autoscaling target: invocations per instance per minute.")
@click.option("--update-samconfig", is_flag=True, help="Write EndpointName/DataBucketName into samconfig.toml.")
def deploy_command(training_job: str | None, endpoint_name: str, bucket: str | None, instance_type: str,
                   instance_count: int, autoscale_max: int | None, invocations_per_instance: float,
                   update_samconfig: bool) -> None:
    """Deploy a trained model to an endpoint with data capture of 100% of requests and responses."""
    import boto3
    import sagemaker

    from data_prep import sagemaker_jobs

    job = training_job or (LAST_TRAINING_JOB.read_text().strip() if LAST_TRAINING_JOB.exists() else None)
    if not job:
        raise click.UsageError("no --training-job given and no previous `train` recorded")
    session = sagemaker.Session()
    bucket = bucket or session.default_bucket()
    sagemaker_jobs.deploy(session, job, endpoint_name, bucket, instance_type=instance_type,
                          instance_count=instance_count)
    if autoscale_max:
        sagemaker_jobs.enable_autoscaling(boto3.client("application-autoscaling"), endpoint_name,
                                          min_instances=instance_count, max_instances=autoscale_max,
                                          invocations_per_instance=invocations_per_instance)
    console.print(f"endpoint {endpoint_name} is InService; capture goes to s3://{bucket}/data_capture/")
    if update_samconfig:
        sagemaker_jobs.update_samconfig(Path("samconfig.toml"), endpoint_name, bucket)
        console.print("samconfig.toml updated; next: sam build && sam deploy")
    else:
        console.print("next: " + sagemaker_jobs.sam_deploy_command(endpoint_name, bucket))


@cli.command("serve")
@click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=Path("data/model"),
              show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free port.")
@click.option("--endpoint-name", help="Answer only this endpoint name on /endpoints/{name}/invocations (default: any).")
@click.option("--capture", "capture_destination", help="Data capture destination: a folder or s3://bucket/prefix.")
@click.option("--sampling-percentage", type=click.IntRange(0, 100), default=100, show_default=True)
def serve_command(model_dir: Path, host: str, port: int, endpoint_name: str | None, capture_destination: str | None,
                  sampling_percentage: int) -> None:
    """Serve the local model with SageMaker's container contract and runtime API (Ctrl-C stops it)."""
    from data_prep.serving.server import serve

    serve(model_dir, host=host, port=port, endpoint_name=endpoint_name, capture_destination=capture_destination,
          sampling_percentage=sampling_percentage, announce=console.print)


def main() -> None:
    run_cli(cli, console, (DataPrepError,))
