"""The whole brief offline: dataset -> local training -> endpoint with capture -> the real state machine
over every test image -> summary (and the monitoring report). No AWS account, no Docker."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from data_prep.model.config import TrainConfig
from workflow.executions import Outcome, Summary, run_all, run_execution
from workflow.offline import OfflineRuntime


@dataclass(frozen=True)
class WorkflowOptions:
    out: Path
    source: Path | None = None
    urls: tuple[str, ...] = ()
    config: TrainConfig = TrainConfig()
    model_dir: Path | None = None  # reuse a trained model instead of training
    concurrency: int = 2
    limit: int | None = None
    keep_running: bool = False


@dataclass
class Services:
    runtime: OfflineRuntime
    endpoint_url: str
    capture_dir: Path


def dataset_labels(dataset: Path) -> dict[str, str]:
    """True labels of the test images, by the S3 key the workflow stages them under (from the manifest)."""
    from data_prep.transform import read_manifest

    return {file: row["label"] for file, row in read_manifest(dataset).items() if row["split"] == "test"}


@contextmanager
def services(model_dir: Path, out: Path, *, expose_http: bool = False) -> Iterator[Services]:
    """Endpoint (with capture) + offline runtime, stopped on exit whatever happens (Ctrl-C included).

    The run's capture and Lambda logs start empty, so a report never mixes in an earlier run's traffic.
    """
    from data_prep.serving.server import start_endpoint

    capture_dir = out / "data_capture"
    for previous in (capture_dir, out / "lambda-logs"):
        shutil.rmtree(previous, ignore_errors=True)
    with ExitStack() as stack:
        server, capture = start_endpoint(model_dir, capture_destination=str(capture_dir))
        if capture is not None:
            stack.callback(capture.close)  # callbacks run last-in first-out: the server stops, then capture flushes
        stack.callback(server.stop)
        runtime = stack.enter_context(OfflineRuntime(server.url, lambda_log_dir=out / "lambda-logs",
                                                     expose_http=expose_http))
        yield Services(runtime, server.url, capture_dir)


def prepare_model(options: WorkflowOptions, console: Console) -> tuple[Path, Path]:
    """(dataset folder, model folder): build the dataset and train unless a model is given."""
    from data_prep.cli import run_extract, run_train_local, run_transform

    dataset = options.out / "dataset"
    source = options.source or run_extract(options.urls, options.out / "cache")
    run_transform(source, None, dataset, test_fraction=0.2)
    if options.model_dir:
        return dataset, options.model_dir
    model_dir = options.out / "model"
    metrics = run_train_local(dataset, model_dir, options.config)
    console.print(f"model: {model_dir} (validation accuracy {metrics['accuracy']}, coverage at 0.93 "
                  f"{metrics['coverage']}, trained in {metrics['training_seconds']} s)")
    return dataset, model_dir


def execute_test_images(runtime: OfflineRuntime, dataset: Path, keys: list[str], concurrency: int,
                        on_done: Callable[[Outcome], None] | None = None) -> Summary:
    """Stage the images (once each) and run one execution per key (keys may repeat)."""
    for key in sorted(set(keys)):
        runtime.put_image(key, (dataset / key).read_bytes())

    def run_one(key: str) -> Outcome:
        return run_execution(runtime.sfn, runtime.s3, runtime.state_machine_arn, runtime.bucket, key, timeout=60.0,
                             poll_interval=0.02)

    return run_all(keys, run_one, concurrency=concurrency, on_done=on_done, labels=dataset_labels(dataset))


def run_offline_workflow(options: WorkflowOptions, console: Console,
                         report: Callable[[Path, Path, Path, Path], Path] | None = None) -> Summary:
    dataset, model_dir = prepare_model(options, console)
    keys = sorted(dataset_labels(dataset))[: options.limit]
    with services(model_dir, options.out, expose_http=options.keep_running) as running:
        console.print(f"endpoint {running.endpoint_url}; Lambda API {running.runtime.lambda_url}; "
                      f"state machine {running.runtime.state_machine_arn}")
        with Progress(TextColumn("executions"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console) as progress:
            task = progress.add_task("executions", total=len(keys))
            summary = execute_test_images(running.runtime, dataset, keys, options.concurrency,
                                          on_done=lambda _: progress.advance(task))
        (options.out / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
        if options.keep_running:
            console.print(running.runtime.connection_help())
            console.print("services keep running; Ctrl-C stops them")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
    if report is not None:
        page = report(running.capture_dir, options.out / "report", model_dir, dataset)
        console.print(f"monitoring report: {page.resolve().as_uri()}")
    return summary
