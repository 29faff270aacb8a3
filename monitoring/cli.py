"""`.venv/bin/python -m monitoring`: report on captured traffic, and check it for drift against the training baseline.

`drift` exits 0 when nothing drifted, 1 when a feature drifted, and 2 when the check could not run
(nothing to read, unreadable input, baseline and model or capture from different class sets, too
few inferences for a verdict): each with one line on stderr. A crash never reads as "drift detected"
nor as "could not run": it is a bug, exit 4 with its traceback. `quality` exits 0 when live precision is
consistent with the target, 1 when it is below (the worst class named), 2 when there are too few labelled
audits to say (how many more named).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from common import settings
from common.artefacts import BASELINE_FILE, ArtefactError, model_class_names, read_model_metadata
from common.aws import aws_options
from common.cli import (
    debug_requested,
    err,
    fail,
    fail_with_traceback,
    group_options,
    json_option,
    out,
    print_json,
    progress_bar,
    run_cli,
)
from common.errors import ExitStatus
from common.progress import Progress
from driftcheck.errors import DriftCheckError
from modelquality.assess import OUTSIDE_WINDOW
from modelquality.errors import QualityError

if TYPE_CHECKING:
    from driftcheck.baseline import Baseline

CAPTURE_HELP = "Data capture location: s3://bucket/prefix, a folder, or one .jsonl file."


@contextmanager
def check_runs(what: str) -> Iterator[None]:
    """The drift and quality cores' named errors (the check could not run on this input: nothing to read, an
    unusable baseline, too few inferences) end as one line and exit status 2, never 1 (drift, or precision below
    the target); --debug (or SCONES_DEBUG=1) shows the traceback instead. Anything else goes on to common.cli's
    runner: an AWS error is 3, a bug 4 with its traceback (never 2, which would read as "could not run" on this
    input)."""
    try:
        yield
    except (DriftCheckError, QualityError) as error:
        if debug_requested():
            fail_with_traceback(ExitStatus.INPUT)
        fail(f"{type(error).__name__}: {error}", ExitStatus.INPUT)


class JsonFailures(click.Command):
    """A command whose `--json` stdout stays one JSON document when it cannot run: a wrong call (click's usage
    errors, found before the command runs) prints {"error": "UsageError", "message": ...} before click's own line
    on stderr; the command body does the same for its errors with `json_failures`. The exit status is unchanged."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        asked_for_json = "--json" in args  # before click's parser consumes the list
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as error:
            if asked_for_json:
                print_json({"error": "UsageError", "message": error.format_message()})
            raise


@contextmanager
def json_failures(as_json: bool) -> Iterator[None]:
    """Under --json, an error that stops the command is also printed on stdout as {"error": <its name>,
    "message": ...}, then raised on (the one line on stderr and the exit status are the CLI's as always)."""
    try:
        yield
    except Exception as error:
        if as_json:
            print_json({"error": type(error).__name__, "message": str(error)})
        raise


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@group_options
def cli() -> None:
    """Monitor the endpoint from its data capture (s3://bucket/data_capture/... or a local folder); also installed
    as scones-monitoring.

    \b
    Typical use:
      .venv/bin/python -m monitoring report --capture out/data_capture --model-dir out/model --dataset out/dataset
      .venv/bin/python -m monitoring drift --capture out/data_capture --model-dir out/model
      .venv/bin/python -m monitoring quality --source out/bucket

    Exit status: 0 done (no drift; precision consistent with the target), 1 drift found or precision below the
    target, 2 bad usage or input (or the check could not run on it, or too few labelled audits to say), 3 AWS or the
    environment, 4 a bug (with its traceback).
    """


def capture_progress(s3: Any) -> AbstractContextManager[Progress | None]:
    """A bar over the files read from an S3 prefix (thousands of objects on a deployed endpoint); none for a local
    folder, read in a blink, so a cron job's stderr stays the one line of its verdict or error."""
    return progress_bar("reading capture", unit="files") if s3 is not None else nullcontext(None)


MODEL_HELP = ("The served model: a model folder, a .tar.gz archive, s3://.../model.tar.gz or a training job name "
              "(its metadata.json and, by default, its baseline.json; the model's sha256 is checked).")


def resolved_model(reference: str | None, stack: ExitStack, region: str | None, profile: str | None) -> Any:
    """The model reference made a checked local folder (common.model_archive.resolve_model), or None. S3 and
    SageMaker are reached only for an s3:// URI or a training job name."""
    if reference is None:
        return None
    import tempfile

    from common.aws import lazy_client
    from common.model_archive import resolve_model

    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scones-model-")))
    return resolve_model(reference, workdir, s3=lazy_client("s3", region, profile),
                         sagemaker=lazy_client("sagemaker", region, profile))


def class_names_for(model_dir: Path | None) -> list[str]:
    """The model's classes (metadata.json), else the template's ClassNames (what the deployed stack expects)."""
    return model_class_names(model_dir) if model_dir else settings.class_names()


def baseline_for(baseline: Path | None, model_dir: Path | None) -> Path | None:
    if baseline is None and model_dir is not None and (model_dir / BASELINE_FILE).is_file():
        return model_dir / BASELINE_FILE
    return baseline


def checked_baseline(baseline: Path | None, model_dir: Path | None, missing: str) -> tuple[Path, Baseline]:
    """(path, baseline) of --baseline or the model's, refused when it holds other classes than the model, or was
    written with another model (its model_sha256)."""
    path = baseline_for(baseline, model_dir)
    if path is None:
        raise click.UsageError(missing)
    from monitoring.baseline import load_baseline

    reference = load_baseline(path)
    if model_dir is not None:
        reference.require_classes(model_class_names(model_dir), f"the model in {model_dir}")
        model_sha256 = read_model_metadata(model_dir).get("model_sha256")
        if reference.model_sha256 != model_sha256:
            raise ArtefactError(f"{path} is the baseline of model sha256 {str(reference.model_sha256)[:12]}..., not "
                                f"of the model in {model_dir} ({str(model_sha256)[:12]}...): use the baseline "
                                "written with this model (drop --baseline)")
    return path, reference


def baseline_owner(reference: Baseline) -> str:
    """Whose baseline the check used, for its verdict line."""
    return (f"the baseline of model sha256 {reference.model_sha256}" if reference.model_sha256
            else "a baseline that names no model")


@cli.command()
@click.option("--capture", required=True, help=CAPTURE_HELP)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=settings.DEFAULT_LAYOUT.report,
              show_default=True)
@click.option("--model", "--model-dir", "model_ref", help=MODEL_HELP)
@click.option("--baseline", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="baseline.json for the drift section (default: the model's, when --model is given).")
@click.option("--dataset", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="data_prep dataset whose manifest gives the true labels (matched by pixels).")
@click.option("--threshold", type=float, default=settings.confidence_threshold,
              show_default="the template's ConfidenceThreshold")
@click.option("--target-precision", type=float, default=settings.target_precision,
              show_default="the template's TargetPrecision",
              help="Precision the recommended threshold must reach (with labels), and live precision's target.")
@click.option("--audits", metavar="BUCKET",
              help="Live precision beside drift, over time: the audits people labelled in this bucket (s3://bucket or "
                   "a folder that mirrors one, such as OUT/bucket), as `monitoring quality` judges them.")
@click.option("--rescore", type=click.IntRange(0), default=200, show_default=True,
              help="With --model: run this many captured inputs per variant through the model and flag answers that "
                   "differ from the captured ones by more than 1e-5 (the capture did not come from these bytes); 0: "
                   "do not.")
@json_option
@aws_options
def report(capture: str, out_dir: Path, model_ref: str | None, baseline: Path | None, dataset: Path | None,
           threshold: float, target_precision: float, audits: str | None, rescore: int, as_json: bool,
           region: str | None, profile: str | None) -> None:
    """Write one self-contained HTML page (a headline verdict, key figures, variants side by side, drift per
    feature, plots) and its PNGs and summary.json.

    \b
    Examples:
      .venv/bin/python -m monitoring report --capture out/data_capture --model-dir out/model --dataset out/dataset
      .venv/bin/python -m monitoring report --capture s3://my-bucket/data_capture/scones-image-classifier \\
          --region eu-west-1
      .venv/bin/python -m monitoring report --capture out/data_capture --model-dir out/model --audits out/bucket
    """
    from common.aws import session
    from monitoring.baseline import load_baseline
    from monitoring.quality import assess_source
    from monitoring.report import labels_from_dataset, write_report

    with check_runs("report"), ExitStack() as stack:
        model = resolved_model(model_ref, stack, region, profile)
        model_dir = model.model_dir if model else None
        names = class_names_for(model_dir)
        baseline_path = baseline_for(baseline, model_dir)
        s3 = session(region, profile).client("s3") if capture.startswith("s3://") else None
        live = None
        if audits is not None:
            audits_s3 = session(region, profile).client("s3") if audits.startswith("s3://") else None
            live = assess_source(audits, names, target_precision, s3=audits_s3)
        forward = None
        if model is not None and rescore:
            from common.onnx_model import OnnxModel

            forward = OnnxModel(model.model_dir).forward
        with capture_progress(s3) as progress:
            page = write_report(capture, out_dir, class_names=names, labels=labels_from_dataset(dataset) if dataset
                                else None, threshold=threshold, target_precision=target_precision,
                                baseline=load_baseline(baseline_path) if baseline_path else None, s3=s3,
                                progress=progress, model=model.describe() if model else None, live_quality=live,
                                forward=forward, rescore_limit=rescore)
    summary = json.loads((out_dir / "summary.json").read_text())
    if as_json:
        print_json(summary)
    else:
        which = f" of model sha256 {summary['model']['model_sha256']}" if summary.get("model") else ""
        out.print(f"{summary['verdict']['state']}: {summary['inferences']} inferences{which} from {summary['files']} "
                  f"files ({summary['malformed']} malformed records); report: {page}", markup=False, highlight=False)


@cli.command()
@click.option("--capture", required=True, help=CAPTURE_HELP)
@click.option("--baseline", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="baseline.json written next to the model at training time (default: the model dir's).")
@click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="The served model: its class names must be the baseline's.")
@click.option("--last", type=click.IntRange(1), help="Check only the most recent N inferences.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Thresholds (default: driftcheck/drift.json in the DriftCheckLayer).")
@json_option
@aws_options
def drift(capture: str, baseline: Path | None, model_dir: Path | None, last: int | None, config_path: Path | None,
          as_json: bool, region: str | None, profile: str | None) -> None:
    """Compare captured traffic with the baseline: exit 0 no drift, 1 drift (the features are named), 2 the check
    could not run, 3 AWS (credentials, region, access).

    \b
    Examples:
      .venv/bin/python -m monitoring drift --capture out/data_capture --model-dir out/model --last 150
      .venv/bin/python -m monitoring drift --capture s3://my-bucket/data_capture/scones-image-classifier \\
          --baseline baseline.json
    """
    from common.aws import session
    from driftcheck.checks import DriftConfig
    from monitoring.capture import read_capture
    from monitoring.drift import TEST_SHORT, drift_of, p_text

    with check_runs("drift check"):
        _, reference = checked_baseline(baseline, model_dir, "give --baseline, or --model-dir with a baseline.json")
        config = DriftConfig.load(config_path)
        s3 = session(region, profile).client("s3") if capture.startswith("s3://") else None
        with capture_progress(s3) as progress:
            records = read_capture(capture, s3=s3, class_names=reference.class_names, progress=progress)
        result = drift_of(records, reference, config, last=last)
    if as_json:
        print_json({**result.as_dict(), "malformed": records.malformed})
    else:
        table = Table(title=f"drift over {result.samples} inferences ({len(records.malformed)} malformed records "
                            f"left out)")
        for column in ("feature", "PSI", "p (test)", "baseline → window", "drifted"):
            table.add_column(column)
        for check in result.checks:
            table.add_row(check.label, f"{check.psi:.3f}", f"{p_text(check.p_value)} ({TEST_SHORT[check.test]})",
                          f"{check.baseline} → {check.window}", "[bold red]yes[/]" if check.drifted else "no")
        out.print(table)
    against = baseline_owner(reference)
    if result.drifted:
        err.print(f"drift detected: {', '.join(result.drifted)} (PSI >= {config.psi_threshold} and p < "
                  f"{config.p_value}; against {against})", markup=False, highlight=False)
        raise SystemExit(ExitStatus.CHECK_FAILED)
    err.print(f"no drift over {result.samples} inferences (against {against})", markup=False, highlight=False)


def _percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def _interval(interval: list[float] | None) -> str:
    return "n/a" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def quality_table(report: dict[str, Any]) -> Table:
    """Overall and per class (the class the model gave): what the labelled audits and reviews show."""
    table = Table(title=f"live quality from {report['source']}: {report['decisions']['audits']} audits, "
                        f"{report['decisions']['low_confidence']} low-confidence decisions")
    for column in ("", "audited", "precision", "95% interval", "review rate", "reviewers agree", "misrouted"):
        table.add_column(column)
    rows = [("all", report), *report["classes"].items()]
    for name, figures in rows:
        precision = "n/a" if figures["precision"] is None else f"{figures['precision']:.3f}"
        agree = (f"{_percent(figures['reviewer_agreement'], 0)} of {figures['low_confidence_labelled']}"
                 if figures["low_confidence_labelled"] else "n/a")
        table.add_row(name, str(figures["audited"]), precision, _interval(figures["precision_interval"]),
                      _percent(figures["review_rate"]), agree, _percent(figures["misrouted_share"], 2))
    return table


def problem_lines(report: dict[str, Any]) -> list[str]:
    """Each kind of bad input met, counted and named (the first few); labels outside the window are a note, not bad
    input (they may judge decisions older than --since)."""
    lines = []
    for kind, count in report["problems"].items():
        if count:
            examples = report["problem_examples"].get(kind, [])
            named = "; ".join(f"{e['where']}: {e['detail']}" for e in examples[:3])
            more = f"; ... {count - 3} more (--json lists {len(examples)})" if count > 3 else ""
            prefix = "note" if kind == OUTSIDE_WINDOW else "bad input"
            lines.append(f"{prefix}: {kind.replace('_', ' ')}: {count} ({named}{more})")
    return lines


@cli.command(cls=JsonFailures)
@click.option("--source", default=str(settings.DEFAULT_LAYOUT.bucket), show_default=True,
              help="s3://bucket (the stack's DataBucketName) or a folder that mirrors one: review/ and audit/ "
                   "records, labels/ (`workflow run` leaves one in OUT/bucket).")
@click.option("--since", help="Judge only the decisions recorded at or after this ISO 8601 time (UTC without a zone).")
@click.option("--target-precision", type=click.FloatRange(0.0, 1.0, min_open=True), default=settings.target_precision,
              show_default="the template's TargetPrecision", help="The precision automatic decisions must reach.")
@json_option
@aws_options
def quality(source: str, since: str | None, target_precision: float, as_json: bool, region: str | None,
            profile: str | None) -> None:
    """Live precision of automatic decisions, from the audits people labelled blind on the review page, with its 95%
    Wilson interval, overall and per class; the review rate, reviewers' agreement on low-confidence items and the
    estimated share of drivers misrouted. Exit 0 when the interval is consistent with the target; 1 when its upper
    bound is below it, overall or for one class (the worst class named); 2 when there are too few labelled audits to
    say (the report's verdict is "too few audits", and how many more are needed is said) or when the check could
    not run (a wrong option, a missing folder or bucket, a --since that is not a time: one line on stderr names
    the error; under --json, stdout then holds {"error": <its name>, "message": ...} instead of the report). AWS
    problems exit 3.

    \b
    Examples:
      .venv/bin/python -m monitoring quality --source out/bucket
      .venv/bin/python -m monitoring quality --source s3://my-data-bucket --since 2026-11-01 --json --region eu-west-1
    """
    from common.artefacts import is_s3_uri
    from common.aws import session
    from monitoring.quality import assess_source, parse_since

    with check_runs("quality check"), json_failures(as_json):
        moment = parse_since(since)
        s3 = session(region, profile).client("s3") if is_s3_uri(source) else None
        with capture_progress(s3) as progress:
            assessment = assess_source(source, settings.class_names(), target_precision, since=moment, s3=s3,
                                       progress=progress)
    report = assessment.as_dict()
    if as_json:
        print_json(report)
    else:
        out.print(quality_table(report))
    for line in problem_lines(report):
        err.print(line, markup=False, highlight=False)
    err.print(report["reason"], markup=False, highlight=False)
    if report["exit_status"]:
        raise SystemExit(report["exit_status"])


@cli.command("upload-baseline")
@click.option("--model", "--model-dir", "model_ref",
              help=MODEL_HELP + " Its baseline.json is uploaded, after checking it has the model's classes.")
@click.option("--baseline", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A baseline.json to upload instead (default: the model dir's).")
@click.option("--bucket", help="The stack's data bucket (its DataBucketName output). Default: samconfig.toml's "
                               "DataBucketName when it names one, else the SageMaker default bucket "
                               "(sagemaker-REGION-ACCOUNT), as the stack uses then.")
@click.option("--key", default=lambda: settings.deployed_parameters()["DriftBaselineKey"],
              show_default="the deployed DriftBaselineKey (samconfig.toml's, else the template's)",
              help="Where the stack's drift check reads it.")
@aws_options
def upload_baseline(model_ref: str | None, baseline: Path | None, bucket: str | None, key: str, region: str | None,
                    profile: str | None) -> None:
    """On AWS: validate the served model's baseline.json and put it where the scheduled drift check
    (CheckDriftFunction) reads it; the stack's DriftBaselineUri output names the place. The baseline must name
    its model (model_sha256, written by training): the model's, with --model; the object carries it as its
    metadata (x-amz-meta-model-sha256), and the drift check's verdicts name it.

    \b
    Examples:
      .venv/bin/python -m monitoring upload-baseline --model-dir out/model        # the stack's default bucket
      .venv/bin/python -m monitoring upload-baseline --model-dir out/model --bucket my-data-bucket --region eu-west-1
    """
    from common.aws import session
    from common.buckets import data_bucket, named_bucket_errors

    with ExitStack() as stack:
        with check_runs("upload"):
            model = resolved_model(model_ref, stack, region, profile)
            baseline_path, reference = checked_baseline(baseline, model.model_dir if model else None,
                                                        "give --model (with a baseline.json) or --baseline")
            if reference.model_sha256 is None:
                raise ArtefactError(f"{baseline_path} names no model (model_sha256; a baseline written before "
                                    "baselines named their model): train the model again, or upload --model's own")
        boto = session(region, profile)
        choice = data_bucket(bucket, boto)
        with named_bucket_errors(choice, "s3:PutObject"):
            boto.client("s3").put_object(Bucket=choice.name, Key=key, Body=baseline_path.read_bytes(),
                                         ContentType="application/json",
                                         Metadata={"model-sha256": reference.model_sha256})
    out.print(f"s3://{choice.name}/{key} of model sha256 {reference.model_sha256} (classes "
              f"{', '.join(reference.class_names)}); the next scheduled drift check reads it", markup=False,
              highlight=False)


def main() -> None:
    run_cli(cli, "python -m monitoring")
