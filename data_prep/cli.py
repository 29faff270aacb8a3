"""`.venv/bin/python -m data_prep`: build the bicycle/motorcycle dataset, stage it in S3, train and deploy the model.

Parses arguments and displays; the steps themselves are library calls (data_prep.dataset.build,
data_prep.training, data_prep.serving). extract (requests), stage (botocore), the trainer (torch)
and the SageMaker SDK are imported inside the commands that use them: `serve` must start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from common import settings
from common.aws import aws_options
from common.aws import session as aws_session
from common.cli import err, group_options, json_option, out, print_json, progress_bar, run_cli
from common.errors import ExitStatus
from data_prep.dataset import cifar
from data_prep.model_cli import bucket_option, deploy_group, package_command, train_group
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


def stage(dataset: Path, bucket: str | None, prefix: str, dry_run: bool, boto_session: Any,
          as_json: bool = False) -> None:
    from common.buckets import data_bucket
    from data_prep.dataset.build import stage_dataset

    choice = data_bucket(bucket, boto_session)
    with progress_bar("upload", unit="files") as progress:
        result = stage_dataset(boto_session.client("s3"), dataset, choice, prefix, dry_run=dry_run, progress=progress)
    if as_json:
        print_json({"destination": f"s3://{result.bucket}/{prefix}/", "dry_run": dry_run,
                    "bucket_created": result.bucket_created, "bucket_missing": result.bucket_missing,
                    "new": sorted(result.new), "changed": sorted(result.changed), "unchanged": len(result.unchanged),
                    "uploaded": result.uploaded})
        return
    if result.bucket_missing:
        out.print(f"s3://{result.bucket} does not exist yet: the real run creates it (the SageMaker default bucket, "
                  f"in {boto_session.region_name})", markup=False, highlight=False)
    if result.bucket_created:
        out.print(f"created s3://{result.bucket} (the SageMaker default bucket, in {boto_session.region_name})",
                  markup=False, highlight=False)
    out.print(f"s3://{result.bucket}/{prefix}/: {len(result.new)} new, {len(result.changed)} changed, "
              f"{len(result.unchanged)} unchanged", markup=False, highlight=False)
    if dry_run:
        for key in sorted(result.new + result.changed):
            out.print(f"  would upload {key} ({'new' if key in result.new else 'changed'})", markup=False,
                      highlight=False)
        out.print("dry run: nothing was uploaded or created", markup=False, highlight=False)
    else:
        out.print(f"uploaded {result.uploaded} files to s3://{result.bucket}/{prefix}/", markup=False,
                  highlight=False)


url_option = click.option("--url", "urls", multiple=True, default=cifar.MIRRORS, show_default=True,
                          help="Where to download CIFAR-100 from, tried in order; repeat for mirrors. "
                               "file:///path/cifar-100-python.tar.gz for a local copy.")
cache_option = click.option("--cache", type=click.Path(path_type=Path), default=LAYOUT.cache, show_default=True,
                            help="Folder for the downloaded archive (reused when its MD5 is right).")
classes_option = click.option("--classes", default=lambda: ",".join(settings.class_names()),
                              show_default="the template's ClassNames",
                              help="Comma-separated CIFAR-100 fine label names; their order is the class index order.")
out_option = click.option("--out", type=click.Path(path_type=Path), default=LAYOUT.dataset, show_default=True,
                          help="Dataset folder: train/, test/, *.lst, manifest.csv, dataset.json.")
fraction_option = click.option("--test-fraction", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
                               help="Image folders only: share of each label held out as test (stable by path).")
prefix_option = click.option("--prefix", default=settings.dataset_prefix, show_default="the deployed DatasetPrefix",
                             help="Key prefix in the bucket.")
dry_run_option = click.option("--dry-run", is_flag=True, help="List what would be uploaded; upload nothing.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@group_options
def cli() -> None:
    """Build, stage, train and deploy the bicycle-vs-motorcycle classifier (also installed as scones-data-prep).

    \b
    Typical use:
      .venv/bin/python -m data_prep transform --source ../shared/data/cifar100_bicycle_motorcycle/train
      .venv/bin/python -m data_prep train local           # out/dataset -> out/model
      .venv/bin/python -m data_prep serve --capture out/data_capture
      .venv/bin/python -m data_prep package --out out/model.tar.gz  # what SageMaker's PyTorch container loads
      .venv/bin/python -m data_prep all --bucket my-bucket  # download, transform, upload
      .venv/bin/python -m data_prep stage --dry-run       # what would change in S3

    Exit status: 0 done, 1 a check failed, 2 bad usage or input, 3 AWS or the environment, 4 a bug.
    """


@cli.command("extract")
@url_option
@cache_option
def extract_command(urls: tuple[str, ...], cache: Path) -> None:
    """Download the CIFAR-100 archive (MD5-verified, cached, retried across mirrors).

    \b
    Examples:
      .venv/bin/python -m data_prep extract
      .venv/bin/python -m data_prep extract --url file:///data/cifar-100-python.tar.gz
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
      .venv/bin/python -m data_prep transform             # the archive `extract` cached
      .venv/bin/python -m data_prep transform --source ../shared/data/cifar100_bicycle_motorcycle/train
      .venv/bin/python -m data_prep transform --classes bicycle,motorcycle,tractor
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
      .venv/bin/python -m data_prep stage --dry-run       # list what would be uploaded
      .venv/bin/python -m data_prep stage --bucket my-bucket --region eu-west-1 --profile dev
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
      .venv/bin/python -m data_prep all --bucket my-bucket
      .venv/bin/python -m data_prep all --source ../shared/data/cifar100_bicycle_motorcycle/train --dry-run
    """
    from common.aws import account_id

    boto_session = aws_session(region, profile)
    account_id(boto_session)  # refused, expired or throttled credentials stop here, before the download and build
    build(source or fetch(urls, cache, "--source /path/to/cifar-100-python.tar.gz"), parse_classes(classes), out,
          test_fraction)
    stage(out, bucket, prefix, dry_run, boto_session)


cli.add_command(train_group)
cli.add_command(package_command)
cli.add_command(deploy_group)


def print_comparison(comparison: dict[str, Any], new_model: str, baseline_model: str) -> None:
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
@click.option("--model", "--model-dir", "model_ref", required=True,
              help="NEW: the model that would be promoted: a model folder, a .tar.gz archive, s3://.../model.tar.gz or "
                   "a training job name (its sha256 is checked and recorded in the table).")
@click.option("--baseline-model", "--baseline-model-dir", "baseline_ref", required=True,
              help="OLD: the model serving now (any of the same forms).")
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
@click.option("--score-with-hooks", is_flag=True,
              help="Score an archive whose code/ is not what this repository's `package` writes through its own "
                   "code/inference.py hooks (run in an isolated interpreter). Without it such an archive is refused: "
                   "its answers would go unscored.")
@json_option
@aws_options
def evaluate_command(model_ref: str, baseline_ref: str, data_dir: Path, split: str, threshold: float,
                     margin: float, resamples: int, seed: int, out_file: Path, audits_source: str | None,
                     score_with_hooks: bool, as_json: bool, region: str | None, profile: str | None) -> None:
    """Gate: NEW against OLD on the same images. Exit 0 promote (NEW is not worse on accuracy nor on precision at
    T), 1 hold (it is), 2 when the check cannot run (class sets differ, no images, an archive whose code/ is not
    this repository's without --score-with-hooks).

    \b
    The table (--out) records which bytes each side is: the model's sha256, the archive's (a folder: the archive
    `package` writes for it) and its code/'s. `deploy` ships only the archive NEW names; `deploy update` only
    over the archive OLD names. OLD is what serves now: for a first deployment there is none (deploy new --no-gate).

    \b
    NEW is worse on a metric when the 95% paired-bootstrap interval of NEW - OLD lies below 0, or when
    NEW - OLD is below -MARGIN. Coverage and log loss are reported, not gated.

    \b
    Examples:
      .venv/bin/python -m data_prep evaluate --model-dir out/model-new --baseline-model-dir out/model \\
          --data-dir out/dataset
      .venv/bin/python -m data_prep evaluate --model-dir out/model-new --baseline-model-dir out/model \\
          --data-dir photos/ --json
      .venv/bin/python -m data_prep evaluate --model scones-image-classification-20250101-120000 \\
          --baseline-model s3://my-bucket/models/sha256-0123456789ab/model.tar.gz --data-dir out/dataset
      .venv/bin/python -m data_prep evaluate --model-dir out/loop/model --baseline-model-dir out/model \\
          --data-dir out/dataset \\
          --audits out/bucket
    """
    import tempfile

    from common.artefacts import model_class_names, write_json
    from common.aws import lazy_client
    from common.model_archive import resolve_model
    from data_prep.training.evaluate import GateConfig, gate, judged, traffic_from_bucket

    config = GateConfig(threshold=threshold, resamples=resamples, seed=seed, margin=margin)
    s3, sagemaker = lazy_client("s3", region, profile), lazy_client("sagemaker", region, profile)
    with tempfile.TemporaryDirectory(prefix="scones-evaluate-") as scratch:
        new, old = (judged(resolve_model(reference, Path(scratch) / name, s3=s3, sagemaker=sagemaker),
                           Path(scratch) / name, score_with_hooks=score_with_hooks)
                    for name, reference in (("new", model_ref), ("old", baseline_ref)))
        traffic = None
        if audits_source is not None:
            traffic = traffic_from_bucket(audits_source, model_class_names(new.model_dir), s3=s3, log=warn)
        with progress_bar("comparing", unit="resamples") as progress:
            comparison = gate(new, old, data_dir, config, split=split, progress=progress,
                              log=warn, traffic=traffic)
    table = comparison.as_dict()  # new_model / baseline_model: which bytes were judged (model, archive, code/)
    write_json(out_file, table)
    verdict = ("PROMOTE: NEW is not worse on " + " nor on ".join(GATED) if comparison.promote
               else "HOLD: NEW is worse on " + ", ".join(comparison.worse_on))
    if as_json:
        print_json({**table, "table_file": str(out_file)})
        err.print(f"{verdict} (table: {out_file})", markup=False, highlight=False)
    else:
        print_comparison(table, model_ref, baseline_ref)
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
    the offline loop's demo: `.venv/bin/python -m workflow run --loop-labels FILE`).

    \b
    Example:
      .venv/bin/python -m data_prep ground-truth --out out/perfect-labels.manifest
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
      .venv/bin/python -m data_prep serve                 # out/model on http://127.0.0.1:8080
      .venv/bin/python -m data_prep serve --port 0 --capture out/data_capture
      .venv/bin/python -m data_prep serve --capture s3://my-data-bucket/data_capture --region eu-west-1 --profile dev
      .venv/bin/python -m data_prep serve --challenger-model-dir out/model-b --challenger-weight 0.2
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
