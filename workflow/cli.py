"""`python -m workflow`: run the state machine offline, and operate it on AWS."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from data_prep.model.config import TrainConfig
from workflow.executions import Summary
from workflow.images import demo_images
from workflow.offline import OfflineRuntime
from workflow.report import history_table, print_result
from workflow.servers import BackgroundServer
from workflow.stub_endpoint import Answer, ScriptedEndpoint

console = Console()


def quiet_moto() -> None:
    """moto logs every failed state at WARNING with its whole parse tree; the history says it better."""
    logging.getLogger("moto").setLevel(logging.CRITICAL)


@click.group()
def cli() -> None:
    """Scones Unlimited image-classification workflow."""


@cli.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("out/demo"), show_default=True,
              help="Where the Lambda logs go.")
def demo(out_dir: Path) -> None:
    """Run the real ASL and handlers offline against a scripted stand-in endpoint: one confident image
    (SUCCEEDED) and one the stand-in is unsure of (FAILED with LowConfidenceError, recorded for review)."""
    quiet_moto()
    endpoint = ScriptedEndpoint(default=Answer.probabilities(0.62, 0.38))
    endpoint.enqueue([Answer.probabilities(0.97, 0.03)])
    with BackgroundServer(endpoint.app(), name="scripted-endpoint") as server, \
            OfflineRuntime(server.url, lambda_log_dir=out_dir / "lambda-logs") as runtime:
        console.print(f"stand-in endpoint {server.url}, Lambda API {runtime.lambda_url}, "
                      f"state machine {runtime.state_machine_arn}")
        for key, data in demo_images():
            runtime.put_image(key, data)
            result = runtime.run(key)
            console.print(history_table(runtime.history(result.execution_arn), title=result.execution_arn))
            print_result(console, result)
        for key, record in runtime.review_records().items():
            console.print(f"review record s3://{runtime.bucket}/{key}: {record['s3_key']} "
                          f"{record['inferences']} - {record['error']['errorMessage']}")
    console.print(f"Lambda logs: {out_dir / 'lambda-logs'}")


def print_summary(summary: Summary, title: str) -> None:
    data = summary.as_dict()
    table = Table(title=title, show_header=False)
    for key, value in data.items():
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


@cli.command()
@click.option("--source", type=click.Path(path_type=Path, exists=True),
              help="A CIFAR-100 archive or a folder of <label>/<image> files. Default: download CIFAR-100.")
@click.option("--url", "urls", multiple=True, help="Download from this URL instead (repeat for mirrors).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("out/workflow"), show_default=True,
              help="Dataset, model, Lambda logs, data capture, summary and report go here.")
@click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Use this trained model instead of training one.")
@click.option("--members", type=click.IntRange(1, 16), default=TrainConfig.members, show_default=True)
@click.option("--epochs", type=click.IntRange(1, 1000), default=TrainConfig.epochs, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Executions in flight at once (2 saturates 2 cores; more only queues, see bench/).")
@click.option("--limit", type=click.IntRange(1), help="Run only the first N test images.")
@click.option("--keep-running", is_flag=True, help="Leave the services up and print their URLs (Ctrl-C stops).")
def run(source: Path | None, urls: tuple[str, ...], out: Path, model_dir: Path | None, members: int, epochs: int,
        concurrency: int, limit: int | None, keep_running: bool) -> None:
    """The whole workflow offline: dataset, local training, endpoint with data capture, one execution of the
    real state machine per test image, a summary and the monitoring report."""
    from data_prep.cifar import MIRRORS
    from workflow.offline_workflow import WorkflowOptions, run_offline_workflow

    quiet_moto()
    options = WorkflowOptions(out=out, source=source, urls=urls or MIRRORS,
                              config=TrainConfig(members=members, epochs=epochs), model_dir=model_dir,
                              concurrency=concurrency, limit=limit, keep_running=keep_running)
    summary = run_offline_workflow(options, console, report=monitoring_report)
    print_summary(summary, f"offline workflow: {out}")


def monitoring_report(capture_dir: Path, out: Path, model_dir: Path, dataset: Path) -> Path:
    """The monitoring report of the run's captured traffic, with the true labels from its dataset."""
    from monitoring.cli import class_names_of
    from monitoring.report import labels_from_dataset, write_report

    return write_report(capture_dir, out, class_names=class_names_of(model_dir), labels=labels_from_dataset(dataset))


def aws_clients(region: str | None) -> dict[str, object]:
    import boto3

    session = boto3.Session(region_name=region)
    return {name: session.client(name) for name in ("cloudformation", "stepfunctions", "s3", "sagemaker")}


@cli.command("start-executions")
@click.option("--stack-name", default="scones-image-classification", show_default=True)
@click.option("--count", type=click.IntRange(1), default=10, show_default=True, help="Random test images to run.")
@click.option("--prefix", default="scones-image-classification", show_default=True,
              help="Where `python -m data_prep stage` put the dataset in the bucket.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--seed", type=int, help="Pick the same images again.")
@click.option("--region")
def start_executions(stack_name: str, count: int, prefix: str, concurrency: int, seed: int | None,
                     region: str | None) -> None:
    """On AWS: start executions for N random staged test images on the stack's state machine, wait, summarise."""
    from workflow import aws_ops

    clients = aws_clients(region)
    outputs = aws_ops.stack_outputs(clients["cloudformation"], stack_name)
    bucket = outputs["DataBucketName"]
    keys = aws_ops.pick_test_keys(clients["s3"], bucket, prefix, count, seed)
    labels = aws_ops.staged_labels(clients["s3"], bucket, prefix)
    summary = aws_ops.run_executions(clients["stepfunctions"], clients["s3"], outputs["StateMachineArn"], bucket, keys,
                                     concurrency=concurrency, labels=labels)
    print_summary(summary, f"{len(keys)} executions on {outputs['StateMachineArn']}")


@cli.command("enable-trigger")
@click.option("--stack-name", default="scones-image-classification", show_default=True)
@click.option("--region")
def enable_trigger(stack_name: str, region: str | None) -> None:
    """On AWS: turn on EventBridge notifications for the data bucket, so uploads to incoming/ start executions."""
    from workflow import aws_ops

    clients = aws_clients(region)
    bucket = aws_ops.stack_outputs(clients["cloudformation"], stack_name)["DataBucketName"]
    changed = aws_ops.enable_eventbridge(clients["s3"], bucket)
    console.print(f"EventBridge notifications {'enabled' if changed else 'were already on'} for s3://{bucket}; "
                  f"upload to s3://{bucket}/incoming/ to start an execution")


@cli.command()
@click.option("--endpoint-name", default="scones-image-classifier", show_default=True)
@click.option("--stack-name", help="Also delete this CloudFormation stack.")
@click.option("--bucket", help="Bucket of the S3 prefixes to delete.")
@click.option("--prefix", "prefixes", multiple=True,
              help="Also delete everything under this prefix of --bucket (repeat): e.g. scones-image-classification, "
                   "data_capture, review.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--region")
def cleanup(endpoint_name: str, stack_name: str | None, bucket: str | None, prefixes: tuple[str, ...], yes: bool,
            region: str | None) -> None:
    """On AWS: delete the endpoint, its config and model, and optionally the stack and S3 prefixes."""
    from workflow import aws_ops

    if prefixes and not bucket:
        raise click.UsageError("--prefix needs --bucket")
    clients = aws_clients(region)
    plan = aws_ops.plan_cleanup(clients["sagemaker"], endpoint_name, stack_name=stack_name, bucket=bucket,
                                prefixes=list(prefixes))
    if not plan.lines():
        console.print("nothing to delete")
        return
    console.print("will delete:\n  " + "\n  ".join(plan.lines()))
    if not yes and not click.confirm("proceed?", default=False):
        raise click.Abort()
    for line in aws_ops.execute_cleanup(plan, sagemaker=clients["sagemaker"], cloudformation=clients["cloudformation"],
                                        s3=clients["s3"]):
        console.print(line)


def main() -> None:
    from data_prep.errors import DataPrepError, run_cli
    from workflow.aws_ops import OperationsError
    from workflow.offline import ExecutionTimeoutError

    run_cli(cli, console, (DataPrepError, OperationsError, ExecutionTimeoutError))
