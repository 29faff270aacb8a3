"""`.venv/bin/python -m workflow`: run the state machine offline, and operate it on AWS.

Parses arguments and displays. The offline commands import the offline runtime (moto, uvicorn,
starlette) inside themselves; the AWS commands need only boto3.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from common import settings
from common.aws import aws_options
from common.cli import err, group_options, json_option, out, print_json, progress_bar, run_cli, terminal_for_our_lines
from common.environ import isolated_aws_environ
from common.errors import ExitStatus
from common.outlock import output_folder_lock
from common.progress import Progress
from data_prep.training.config import TrainConfig
from workflow.display import history_table, print_result

if TYPE_CHECKING:
    from workflow.executions import Summary
    from workflow.offline_run import Services


def quiet_moto() -> None:
    """moto logs every failed state at WARNING with its whole parse tree; the history says it better."""
    logging.getLogger("moto").setLevel(logging.CRITICAL)


def offline_command(command: Callable[..., None]) -> Callable[..., None]:
    """An offline command runs with none of the user's AWS settings (common.environ.isolated_aws_environ), from
    before the offline runtime (moto) is imported: a user's AWS_ENDPOINT_URL or AWS_PROFILE is for AWS, and must
    neither break nor redirect a run against the local stand-ins."""

    @functools.wraps(command)
    def isolated(*args: Any, **kwargs: Any) -> None:
        with isolated_aws_environ():
            command(*args, **kwargs)

    return isolated


class ConsoleObserver:
    """The offline run's notes and progress bars, on stderr."""

    def note(self, message: str) -> None:
        err.print(message)

    @contextmanager
    def progress(self, description: str, unit: str) -> Iterator[Progress]:
        with progress_bar(description, unit=unit) as update:
            yield update


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@group_options
def cli() -> None:
    """Scones Unlimited image-classification workflow: offline end to end, and on AWS (also installed as
    scones-workflow).

    \b
    Typical use:
      .venv/bin/python -m workflow run --source ../shared/data/cifar100_bicycle_motorcycle/train  # writes out/
      .venv/bin/python -m workflow run --model-dir out/model --limit 20                 # reuses out/dataset
      .venv/bin/python -m workflow start-executions --count 20 --region eu-west-1

    Exit status: 0 done, 1 a check failed, 2 bad usage or input, 3 AWS or the environment, 4 a bug.
    """


@cli.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("out/demo"), show_default=True,
              help="Where the Lambda logs go.")
@offline_command
def demo(out_dir: Path) -> None:
    """Run the real ASL and handlers offline against a scripted stand-in endpoint: one confident image
    (SUCCEEDED) and one the stand-in is unsure of (FAILED with LowConfidenceError, recorded for review).

    \b
    Example:
      .venv/bin/python -m workflow demo
    """
    from workflow.demo import run_demo

    quiet_moto()
    run = run_demo(out_dir / "lambda-logs")
    out.print(f"stand-in endpoint {run.endpoint_url}, Lambda API {run.lambda_url}, state machine "
              f"{run.state_machine_arn}")
    for result, history in run.executions:
        out.print(history_table(history, title=result.execution_arn))
        print_result(out, result)
    for key, record in run.review_records.items():
        out.print(f"review record s3://{run.bucket}/{key}: {record['s3_key']} {record['inferences']} - "
                  f"{record['error']['errorMessage']}")
    out.print(f"Lambda logs: {out_dir / 'lambda-logs'}")


def exit_if_unexpected(unexpected: int) -> None:
    """One convention for the commands that report outcomes (start-executions, run, classify-prefix): exit 1 when any
    execution or object failed unexpectedly (sent to review is the workflow doing its job), after the summary and its
    `FAILED: ...` line (workflow.executions.outcomes_verdict) are shown."""
    if unexpected:
        raise SystemExit(ExitStatus.CHECK_FAILED)


def print_summary(summary: Summary, title: str) -> None:
    table = Table(title=title, show_header=False)
    for key, value in summary.as_dict().items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)


def plain_note(line: str) -> None:
    err.print(line, markup=False, highlight=False)


def drift_check_line(outcome: dict[str, Any]) -> str:
    """The scheduled drift check's verdict on the run's traffic, in one line."""
    name = outcome.get("function", "CheckDriftFunction")
    if outcome.get("verdict") == "error":
        return f"drift check ({name}) could not run: {outcome.get('error')}: {outcome.get('message')}"
    detail = {"drift": f"drifted: {', '.join(outcome.get('drifted') or [])}",
              "no verdict": str(outcome.get("reason", ""))}.get(str(outcome.get("verdict")), "")
    return (f"drift check ({name}, as scheduled on AWS): {outcome.get('verdict')} over {outcome.get('samples')} "
            f"inferences" + (f"; {detail}" if detail else ""))


def quality_check_line(outcome: dict[str, Any]) -> str:
    """The scheduled quality check's verdict on the run's audits, and its alarms' states, in one line."""
    name = outcome.get("function", "CheckQualityFunction")
    if outcome.get("verdict") == "error":
        return f"quality check ({name}) could not run: {outcome.get('error')}: {outcome.get('message')}"
    alarms = ", ".join(f"{alarm} {state['state']}" for alarm, state in (outcome.get("alarms") or {}).items())
    audits = (outcome.get("decisions") or {}).get("audits", 0)
    return f"quality check ({name}, as scheduled on AWS) on {audits} audits: {outcome.get('reason')}; {alarms}"


def print_plain(lines: list[str], console: Console) -> None:
    """Lines as they are, one per line: no wrapping (a command or an ARN must paste whole), no markup."""
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True, crop=False)


def hold_until_stopped(lines: list[str], out_dir: Path, console: Console, running: str, *notes: str) -> None:
    """Print how to reach the running services (also written to OUT/connection.txt) and the notes, then wait for
    Ctrl-C or SIGTERM; the caller's services stop when this returns."""
    from common.servers import wait_for_stop_signal  # (uvicorn: not at the AWS commands' start-up)

    path = settings.Layout(out_dir).connection
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")

    def ready() -> None:  # once SIGTERM and Ctrl-C stop the services cleanly
        print_plain(lines, console)
        for note in (f"(also in {path}) {running}", *notes, "Ctrl-C stops"):
            err.print(note, markup=False, highlight=False)

    wait_for_stop_signal(ready)


def hold_services(out_dir: Path, console: Console) -> Callable[[Services], None]:
    """--keep-running: how to reach the services, then wait for Ctrl-C."""

    def hold(running: Services) -> None:
        hold_until_stopped(running.runtime.connection_help(), out_dir, console, "services keep running")

    return hold


@cli.command()
@click.option("--source", type=click.Path(path_type=Path, exists=True),
              help="A CIFAR-100 archive or a folder of <label>/<image> files. Default: download CIFAR-100.")
@click.option("--url", "urls", multiple=True, help="Download from this URL instead (repeat for mirrors).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=settings.DEFAULT_LAYOUT.root, show_default=True,
              help="dataset/, model/, data_capture/, report/, lambda-logs/, summary.json and run.log go here: the "
                   "folders data_prep, serve and monitoring read by default.")
@click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Use this trained model instead of training one (checked first); the run's dataset is reused "
                   "when it is there and --source is not given.")
@click.option("--members", type=click.IntRange(1, 16), default=TrainConfig.members, show_default=True)
@click.option("--epochs", type=click.IntRange(1, 1000), default=TrainConfig.epochs, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Executions in flight at once (2 saturates 2 cores; more only queues, see bench/).")
@click.option("--limit", type=click.IntRange(1),
              help="Run a sample of N test images, each label's share as in the test set (seeded: --seed).")
@click.option("--seed", type=int, default=0, show_default=True, help="Which --limit sample.")
@click.option("--keep-running", is_flag=True,
              help="Leave the services up (the classification API included), print how to reach them (also written "
                   "to OUT/connection.txt); Ctrl-C stops.")
@click.option("--loop-labels", type=click.Path(path_type=Path, exists=True),
              help="Close the loop: after the first pass, retrain on these Ground Truth labels (a manifest or a folder "
                   "of them, e.g. OUT/bucket/labels/ from the review page) of the images sent to review, and gate the "
                   "new model against the old on a held-back part of the test images.")
@click.option("--loop-demo-labels", is_flag=True,
              help="Close the loop with the test images' own labels standing in for reviewers (a demo).")
@click.option("--loop-holdout", type=click.FloatRange(0.05, 0.95), default=0.5, show_default=True,
              help="Share of the test images held back from retraining to judge both models (stable by key hash).")
@click.option("--audit-rate", metavar="R",
              help="Share of confident decisions recorded under OUT/bucket/audit/ for a blind label (0 to 1; 1 audits "
                   "every one). Default: the template's AuditRate.")
@json_option
@offline_command
def run(source: Path | None, urls: tuple[str, ...], out_dir: Path, model_dir: Path | None, members: int, epochs: int,
        concurrency: int, limit: int | None, seed: int, keep_running: bool, loop_labels: Path | None,
        loop_demo_labels: bool, loop_holdout: float, audit_rate: str | None, as_json: bool) -> None:
    """The whole workflow offline: dataset, local training, endpoint with data capture, one execution of the
    real state machine per test image, a summary and the monitoring report; with --loop-labels or
    --loop-demo-labels, then a model retrained on the reviewed images and the gate's verdict on it. Library
    warnings go to OUT/run.log.

    \b
    Examples:
      .venv/bin/python -m workflow run --source ../shared/data/cifar100_bicycle_motorcycle/train
      .venv/bin/python -m workflow run --model-dir out/model --limit 20  # skip training, reuse out/dataset
      .venv/bin/python -m workflow run --model-dir out/model --keep-running --json
      .venv/bin/python -m workflow run --model-dir out/model --loop-labels out/bucket/labels/
      .venv/bin/python -m workflow run --model-dir out/model --audit-rate 0.2  # a fifth of confident decisions audited
    """
    from data_prep.dataset.cifar import MIRRORS
    from workflow.offline_run import WorkflowOptions, check_inputs, parse_audit_rate_option, run_offline_workflow

    if loop_labels is not None and loop_demo_labels:
        raise click.UsageError("--loop-labels and --loop-demo-labels are two sources of labels: give one")
    quiet_moto()
    options = WorkflowOptions(out=out_dir, source=source, urls=urls or MIRRORS,
                              config=TrainConfig(members=members, epochs=epochs), model_dir=model_dir,
                              concurrency=concurrency, limit=limit, seed=seed, loop_labels=loop_labels,
                              loop_demo_labels=loop_demo_labels, loop_holdout=loop_holdout,
                              audit_rate=parse_audit_rate_option(audit_rate))
    check_inputs(options)  # before anything is written, the run's log included
    hold = hold_services(out_dir, err if as_json else out) if keep_running else None
    with output_folder_lock(out_dir, note=plain_note), terminal_for_our_lines(options.layout.run_log) as log:
        result = run_offline_workflow(options, ConsoleObserver(), keep_running=hold)
    if log.note():
        err.print(log.note(), markup=False, highlight=False)
    if as_json:
        print_json({"verdict": result.verdict, **result.summary.as_dict(), "drift_check": result.drift_check,
                    "quality_check": result.quality_check, "loop": result.loop,
                    "out": str(out_dir), "summary_file": str(options.layout.summary), "report": str(result.report),
                    "bucket": str(result.bucket) if result.bucket is not None else None})
        exit_if_unexpected(result.summary.unexpected)
        return
    print_summary(result.summary, f"offline workflow: {out_dir}")
    out.print(drift_check_line(result.drift_check), markup=False, highlight=False)
    out.print(quality_check_line(result.quality_check), markup=False, highlight=False)
    out.print(f"monitoring report: {result.report.resolve().as_uri()}", markup=False, highlight=False)
    if result.bucket is not None:
        out.print(f"review queue: {settings.hint('review serve')} --source {result.bucket}", markup=False,
                  highlight=False)
    if result.loop is not None:
        print_loop(result.loop)
    print_plain(verdict_lines(result.verdict), out)
    exit_if_unexpected(result.summary.unexpected)


def verdict_lines(verdict: dict[str, Any]) -> list[str]:
    """The run's verdict (its executions' outcomes and the monitoring report's) in plain words: the state, then why,
    then the threshold the labelled test images recommend."""
    lines = [f"verdict: {str(verdict.get('state', 'unknown')).upper()} (this run's executions, and the monitoring "
             f"report on its traffic: {verdict.get('report')})"]
    lines += [f"  - {reason}" for reason in verdict.get("reasons", [])]
    if verdict.get("recommendation"):
        lines.append(f"  - {verdict['recommendation']}")
    return lines


def print_loop(loop: dict[str, Any]) -> None:
    """The old and the new model side by side on the held-back images, and the gate's verdict."""
    from data_prep.training.evaluate import table_rows

    gate = loop["gate"]
    table = Table(title=f"closed loop: {loop['used_for_training']} reviewed images retrained the model; both judged "
                        f"on {gate['images']} held-back test images")
    for column in ("metric", "old model", "new model", "new - old", "95% interval", "gate"):
        table.add_column(column)
    for row in table_rows(gate):
        table.add_row(row["metric"], row["baseline"], row["new"], row["difference"], row["interval"], row["gate"])
    out.print(table)
    if gate.get("traffic"):
        from data_prep.training.evaluate import traffic_rows, traffic_title

        live = Table(title=f"and on the {traffic_title(gate)}")
        for column in ("metric", "old model", "new model", "new - old", "95% interval", "gate"):
            live.add_column(column)
        for row in traffic_rows(gate) or []:
            live.add_row(row["metric"], row["baseline"], row["new"], row["difference"], row["interval"], row["gate"])
        out.print(live)
    verdict = ("PROMOTE: the new model is not worse" if loop["decision"] == "promote"
               else "HOLD: the new model is worse on " + ", ".join(gate["worse_on"]))
    out.print(f"{verdict} ({loop['new_model']} against {loop['old_model']}; {gate['rule']})", markup=False,
              highlight=False)
    if loop["promoted_into"]:
        older = "; the older model kept there was replaced" if loop.get("replaced_older_previous") else ""
        out.print(f"promoted: {loop['promoted_into']} now holds the new model (the old one: {loop['old_model']}"
                  f"{older})", markup=False, highlight=False)
    elif loop["decision"] == "promote":
        out.print(f"promoted: serve {loop['served_model']} (your --model-dir {loop['old_model']} is left as it is)",
                  markup=False, highlight=False)
    else:
        out.print(f"held: {loop['served_model']} stays the served model", markup=False, highlight=False)


def aws_clients(region: str | None, profile: str | None) -> dict[str, Any]:
    """The clients the AWS commands use, from common.aws's session: a missing profile, no region or no credentials
    stop the command here, before anything is listed or started."""
    from common.aws import session

    made = session(region, profile)
    return {name: made.client(name) for name in ("cloudformation", "stepfunctions", "s3", "sagemaker")}


stack_option = click.option("--stack-name", default=settings.stack_name, show_default="samconfig.toml's stack_name")


@cli.command("start-executions")
@stack_option
@click.option("--count", type=click.IntRange(1), default=10, show_default=True, help="Random test images to run.")
@click.option("--prefix", default=settings.dataset_prefix, show_default="the deployed DatasetPrefix",
              help="Where `.venv/bin/python -m data_prep stage` put the dataset in the bucket.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--seed", type=int, help="Pick the same images again.")
@json_option
@aws_options
def start_executions(stack_name: str, count: int, prefix: str, concurrency: int, seed: int | None, as_json: bool,
                     region: str | None, profile: str | None) -> None:
    """On AWS: start executions for N random staged test images on the stack's state machine, wait, summarise.
    Exit 0 when every execution succeeded or was sent to review, 1 when any failed or was aborted, 3 when AWS
    refused a call (the executions' outcomes are then unknown).

    \b
    Examples:
      .venv/bin/python -m workflow start-executions --count 20
      .venv/bin/python -m workflow start-executions --count 50 --seed 7 --region eu-west-1 --profile dev --json
    """
    from workflow import aws_ops

    clients = aws_clients(region, profile)
    outputs = aws_ops.stack_outputs(clients["cloudformation"], stack_name)
    bucket = outputs["DataBucketName"]
    keys = aws_ops.pick_test_keys(clients["s3"], bucket, prefix, count, seed)
    labels = aws_ops.staged_labels(clients["s3"], bucket, prefix)
    summary = aws_ops.run_executions(clients["stepfunctions"], outputs["StateMachineArn"], bucket, keys,
                                     concurrency=concurrency, labels=labels)
    if as_json:
        print_json({**summary.as_dict(), "unexpected": summary.unexpected, "verdict": summary.verdict(),
                    "state_machine_arn": outputs["StateMachineArn"]})
    else:
        print_summary(summary, f"{len(keys)} executions on {outputs['StateMachineArn']}")
        out.print(summary.verdict(), markup=False, highlight=False)
    exit_if_unexpected(summary.unexpected)


@cli.command("enable-trigger")
@stack_option
@aws_options
def enable_trigger(stack_name: str, region: str | None, profile: str | None) -> None:
    """On AWS: turn on EventBridge notifications for the data bucket, so uploads to incoming/ start executions.

    \b
    Example:
      .venv/bin/python -m workflow enable-trigger --stack-name scones-image-classification
    """
    from workflow import aws_ops

    clients = aws_clients(region, profile)
    bucket = aws_ops.stack_outputs(clients["cloudformation"], stack_name)["DataBucketName"]
    changed = aws_ops.enable_eventbridge(clients["s3"], bucket)
    out.print(f"EventBridge notifications {'enabled' if changed else 'were already on'} for s3://{bucket}; "
              f"upload to s3://{bucket}/incoming/ to start an execution")


@cli.command()
@click.option("--endpoint-name", default=settings.deployed_endpoint_name,
              show_default="samconfig.toml's EndpointName, else the template's")
@click.option("--stack-name", help="Also delete this CloudFormation stack.")
@click.option("--bucket", help="Bucket of the S3 prefixes to delete.")
@click.option("--prefix", "prefixes", multiple=True,
              help="Also delete everything under this prefix of --bucket (repeat): e.g. scones-image-classification, "
                   "data_capture, review.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing (and ask nothing).")
@aws_options
def cleanup(endpoint_name: str, stack_name: str | None, bucket: str | None, prefixes: tuple[str, ...], yes: bool,
            dry_run: bool, region: str | None, profile: str | None) -> None:
    """On AWS: delete the endpoint, its config and model, and optionally the stack and S3 prefixes (listed first,
    then asked). Answering no, like --dry-run, deletes nothing and exits 0; Ctrl-C exits 130.

    \b
    Examples:
      .venv/bin/python -m workflow cleanup                # the endpoint only
      .venv/bin/python -m workflow cleanup --dry-run --stack-name scones-image-classification \\
          --bucket my-bucket --prefix review
      .venv/bin/python -m workflow cleanup --stack-name scones-image-classification --bucket my-bucket \\
          --prefix review --yes
    """
    from common.cli import confirm
    from workflow import aws_ops

    if prefixes and not bucket:
        raise click.UsageError("--prefix needs --bucket")
    if yes and dry_run:
        raise click.UsageError("--yes deletes, --dry-run deletes nothing: give one")
    clients = aws_clients(region, profile)
    plan = aws_ops.plan_cleanup(clients["sagemaker"], endpoint_name, stack_name=stack_name, bucket=bucket,
                                prefixes=list(prefixes))
    if not plan.lines():
        out.print("nothing to delete")
        return
    out.print(("would delete:\n  " if dry_run else "will delete:\n  ") + "\n  ".join(plan.lines()), markup=False,
              highlight=False)
    if dry_run:
        out.print("dry run: nothing was deleted")
        return
    if not yes and not confirm("proceed?"):
        out.print("declined: nothing was deleted")
        return
    aws_ops.execute_cleanup(plan, sagemaker=clients["sagemaker"], cloudformation=clients["cloudformation"],
                            s3=clients["s3"], announce=lambda line: out.print(line, markup=False, highlight=False))


@cli.command("serve-api")
@click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              default=settings.DEFAULT_LAYOUT.model, show_default=True,
              help="A trained model (.venv/bin/python -m data_prep train local, or workflow run's).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: any free port.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("out/serve-api"),
              show_default=True,
              help="Lambda logs, the endpoint's data capture and connection.txt (how to call the API) go here.")
@offline_command
def serve_api(model_dir: Path, port: int, out_dir: Path) -> None:
    """Offline: the classification API (POST /classifications, the template's mapping templates and IAM
    authorisation) over the endpoint serving MODEL_DIR and the EXPRESS state machine, until Ctrl-C.

    \b
    Examples:
      .venv/bin/python -m workflow serve-api              # out/model, any free port
      .venv/bin/python -m workflow serve-api --model-dir out/model --port 8088
    """
    from common.artefacts import check_model_dir
    from workflow.offline_doors import serve_api as serve

    check_model_dir(model_dir)
    from common.servers import check_port_free

    check_port_free("127.0.0.1", port)  # said at once, before the endpoint, moto and the Lambda API start
    quiet_moto()

    def ready(running: Services) -> None:
        bucket = settings.Layout(out_dir).bucket
        hold_until_stopped(running.runtime.api_help(), out_dir, out, "the API keeps running",
                           f"on Ctrl-C the bucket is left in {bucket} (review queue: {settings.hint('review serve')} "
                           f"--source {bucket})")

    with output_folder_lock(out_dir, note=plain_note):
        serve(model_dir, out_dir, port, ready)


def print_batch_summary(summary: dict[str, object], path: Path) -> None:
    source = summary.get("source") or f"s3://{summary['bucket']}/{summary['prefix']}"
    table = Table(title=f"batch over {source}", show_header=False)
    for name in ("classified", "review", "failed"):
        table.add_row(name, str(summary[name]["count"]))  # type: ignore[index]
    table.add_row("objects", str(summary["objects"]))
    table.add_row("objects/s", str(summary.get("objects_per_second")))
    if summary.get("events"):
        table.add_row("events", ", ".join(f"{k} {v}" for k, v in summary["events"].items()))  # type: ignore[attr-defined]
    incomplete = "" if summary.get("complete") else f" (incomplete: {summary.get('error')})"
    table.add_row("status", f"{summary.get('status')}{incomplete}")
    out.print(table)
    failed: dict[str, str] = summary["failed"]["keys"]  # type: ignore[index]
    for key, error in list(failed.items())[:20]:
        out.print(f"  failed {key}: {error}", markup=False, highlight=False)
    if len(failed) > 20:
        out.print(f"  ... and {len(failed) - 20} more failed objects", markup=False)
    out.print(f"summary: {path} (in S3: {summary.get('summary_uri')})", markup=False, highlight=False)
    if summary.get("results_file"):
        out.print(f"results: {summary['results_file']} (key,label,confidence,outcome,error: one row per object)",
                  markup=False, highlight=False)
    out.print(str(summary["verdict"]), markup=False, highlight=False)


def show_batch_summary(summary: dict[str, object], path: Path, as_json: bool) -> None:
    if as_json:
        print_json({**summary, "summary_file": str(path)})
    else:
        print_batch_summary(summary, path)


@offline_command
def classify_folder_offline(folder: Path, model_dir: Path | None, out_dir: Path, *, max_concurrency: int | None,
                            tolerated_failure_percentage: float | None, as_json: bool) -> None:
    """classify-prefix --offline: the batch over a folder, against the local endpoint and runtime."""
    from common.artefacts import check_model_dir
    from workflow.offline_doors import classify_folder

    layout = settings.Layout(out_dir)
    model_dir = model_dir or settings.DEFAULT_LAYOUT.model
    check_model_dir(model_dir)  # before anything starts: a missing or incomplete model says what to do
    quiet_moto()
    with output_folder_lock(out_dir, note=plain_note), terminal_for_our_lines(layout.run_log):
        summary = classify_folder(model_dir, folder, out_dir, ConsoleObserver(), max_concurrency=max_concurrency,
                                  tolerated_failure_percentage=tolerated_failure_percentage)
    show_batch_summary(summary, layout.batch_summary, as_json)
    if not as_json and summary["review"]["count"]:
        out.print(f"review queue: {settings.hint('review serve')} --source {layout.bucket}", markup=False,
                  highlight=False)
    exit_if_unexpected(summary["unexpected"])


@cli.command("classify-prefix")
@click.option("--prefix", required=True,
              help="On AWS: s3://bucket/path/ (in the stack's data bucket). With --offline: a folder of images.")
@click.option("--offline", is_flag=True, help="Run offline over a folder, not on AWS.")
@click.option("--model-dir", type=click.Path(path_type=Path, file_okay=False),
              show_default=f"{settings.DEFAULT_LAYOUT.model} (what workflow run and train local write)",
              help="--offline: the trained model the local endpoint serves (checked first).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("out/batch"),
              show_default=True, help="batch_summary.json and results.csv (one row per object: key, label, "
                                      "confidence, outcome, error) go here (offline also Lambda logs and data "
                                      "capture).")
@click.option("--max-concurrency", type=click.IntRange(1, 10000),
              help="Child executions in flight (default: the state machine's, 20).")
@click.option("--tolerated-failure-percentage", type=click.FloatRange(0, 100),
              help="Objects whose own workflow breaks (not those failing with a named error) the batch tolerates "
                   "(default: the state machine's, 5).")
@stack_option
@json_option
@aws_options
def classify_prefix_command(prefix: str, offline: bool, model_dir: Path | None, out_dir: Path,
                            max_concurrency: int | None, tolerated_failure_percentage: float | None, stack_name: str,
                            as_json: bool, region: str | None, profile: str | None) -> None:
    """Classify every object under a prefix with the batch state machine (a Distributed Map of child executions
    of the EXPRESS machine); waits with a progress bar, prints the summary and writes it as JSON.

    \b
    Examples:
      .venv/bin/python -m workflow classify-prefix --prefix s3://my-data-bucket/photos/2025-06-01/ --region eu-west-1
      .venv/bin/python -m workflow classify-prefix --offline --prefix ./photos  # out/model; out/batch/results.csv
    """
    layout = settings.Layout(out_dir)
    if offline:
        classify_folder_offline(Path(prefix), model_dir, out_dir, max_concurrency=max_concurrency,
                                tolerated_failure_percentage=tolerated_failure_percentage, as_json=as_json)
        return
    from common.artefacts import parse_s3_uri, write_json
    from common.aws import session
    from workflow import aws_ops
    from workflow.batch import classify_prefix, download_results, normalise_prefix

    location = parse_s3_uri(prefix)
    key_prefix = normalise_prefix(location.key)
    boto = session(region, profile)
    outputs = aws_ops.stack_outputs(boto.client("cloudformation"), stack_name)
    if location.bucket != outputs["DataBucketName"]:
        raise click.UsageError(f"the stack reads only s3://{outputs['DataBucketName']}/: copy the images there "
                               f"(or deploy with DataBucketName={location.bucket})")
    batch_prefix = outputs.get("BatchPrefix")  # stacks deployed before it was an output have no such limit
    if batch_prefix and not key_prefix.startswith(batch_prefix):
        raise click.UsageError(f"the stack's batch may list only s3://{location.bucket}/{batch_prefix}: copy the "
                               f"images under it (or deploy with BatchPrefix={key_prefix})")
    s3 = boto.client("s3")
    with progress_bar("classifying", unit="objects") as progress:  # (an empty prefix is refused before the bar)
        summary = classify_prefix(boto.client("stepfunctions"), s3, outputs["BatchStateMachineArn"],
                                  location.bucket, key_prefix, results_bucket=outputs["DataBucketName"],
                                  progress=progress, max_concurrency=max_concurrency,
                                  tolerated_failure_percentage=tolerated_failure_percentage)
    results = download_results(s3, summary, layout.batch_results)
    summary["results_file"] = str(results) if results else None
    write_json(layout.batch_summary, summary)
    show_batch_summary(summary, layout.batch_summary, as_json)
    exit_if_unexpected(summary["unexpected"])


def main() -> None:
    run_cli(cli, "python -m workflow")
