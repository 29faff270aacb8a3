"""The whole brief offline: dataset -> local training -> endpoint with capture -> the real state machine
over every test image -> summary -> the monitoring report. No AWS account, no Docker.

A library step: it reports through a RunObserver (notes and progress) and returns what it made;
`python -m workflow run` displays it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from common import settings
from common.artefacts import (
    BASELINE_FILE,
    ArtefactError,
    check_model_dir,
    held_out_labels,
    is_dataset,
    model_class_names,
    read_dataset_description,
    write_json,
)
from common.errors import InputError
from common.progress import Progress
from common.stats import stratified_sample
from data_prep.training.config import TrainConfig
from workflow.executions import Outcome, Summary, run_all, run_execution
from workflow.offline.events import count_by_type
from workflow.offline.runtime import OfflineRuntime


class AuditRateError(InputError):
    """--audit-rate is not a share from 0 to 1."""


def parse_audit_rate_option(value: str | None) -> float | None:
    """`--audit-rate`: the template's AuditRate for this run (0 to 1; 1 audits every confident decision)."""
    from modelquality.audit import parse_audit_rate
    from modelquality.errors import InvalidAuditRateError

    if value is None:
        return None
    try:
        return parse_audit_rate(value, "--audit-rate")
    except InvalidAuditRateError as error:
        raise AuditRateError(str(error)) from None


class RunObserver(Protocol):
    """What the run reports: notes, and a progress callback per long step."""

    def note(self, message: str) -> None: ...

    def progress(self, description: str, unit: str) -> AbstractContextManager[Progress]: ...


@dataclass(frozen=True)
class WorkflowOptions:
    out: Path
    source: Path | None = None
    urls: tuple[str, ...] = ()
    config: TrainConfig = field(default_factory=TrainConfig)
    model_dir: Path | None = None  # reuse a trained model instead of training
    concurrency: int = 2
    limit: int | None = None  # a sample of this many test images, stratified by label
    seed: int = 0  # which sample
    loop_labels: Path | None = None  # close the loop: retrain on these labels, gate the new model (workflow.loop)
    loop_demo_labels: bool = False  # ... with the test images' own labels as the labels file
    loop_holdout: float = 0.5
    audit_rate: float | None = None  # the template's AuditRate, overridden for this run

    @property
    def layout(self) -> settings.Layout:
        return settings.Layout(self.out)

    @property
    def parameter_overrides(self) -> dict[str, str]:
        """The template parameters this run overrides, as `sam deploy --parameter-overrides` would."""
        return {} if self.audit_rate is None else {"AuditRate": str(self.audit_rate)}


@dataclass
class Services:
    runtime: OfflineRuntime
    endpoint_url: str
    capture_dir: Path


@dataclass(frozen=True)
class RunResult:
    summary: Summary
    dataset: Path
    model_dir: Path
    report: Path
    drift_check: dict[str, Any] = field(default_factory=dict)  # the CheckDriftFunction's verdict on this traffic
    quality_check: dict[str, Any] = field(default_factory=dict)  # the CheckQualityFunction's, and its alarms' states
    bucket: Path | None = None  # the bucket left on disk
    loop: dict[str, Any] | None = None  # the closed loop's summary (workflow.loop), when asked for
    verdict: dict[str, Any] = field(default_factory=dict)  # the monitoring report's verdict on this run's traffic


def model_version(model_dir: Path) -> str:
    """The ModelVersion the events carry: named by the served ONNX file's sha256, as `deploy new` names it on AWS."""
    from common.model_archive import sha256_file
    from data_prep.training.sagemaker_deploy import model_version as named

    model = model_dir / "model.onnx"
    return named(sha256_file(model)) if model.is_file() else "unknown"


@contextmanager
def services(model_dir: Path, layout: settings.Layout, *, expose_http: bool = False, serve_api: bool = False,
             api_port: int = 0, mirror: bool = False,
             parameter_overrides: dict[str, str] | None = None) -> Iterator[Services]:
    """Endpoint (with capture) + offline runtime, stopped on exit whatever happens (Ctrl-C included).

    With `mirror`, the bucket is left on disk in `layout.bucket` when the services stop (Ctrl-C included).

    The run's capture and Lambda logs start empty, so a report never mixes in an earlier run's traffic.
    With `serve_api`, the template's classification API listens too (on `api_port`, 0 for any free port).
    """
    from data_prep.serving.server import start_endpoint

    for previous in (layout.capture, layout.lambda_logs):
        shutil.rmtree(previous, ignore_errors=True)
    with ExitStack() as stack:
        server, capture = start_endpoint(model_dir, capture_destination=str(layout.capture))
        if capture is not None:
            stack.callback(capture.close)  # callbacks run last-in first-out: the server stops, then capture flushes
        stack.callback(server.stop)
        runtime = stack.enter_context(OfflineRuntime(server.url, lambda_log_dir=layout.lambda_logs,
                                                     expose_http=expose_http, serve_api=serve_api, api_port=api_port,
                                                     parameter_overrides={"ModelVersion": model_version(model_dir),
                                                                          **(parameter_overrides or {})},
                                                     mirror_dir=layout.bucket if mirror else None))
        register_endpoint(runtime, model_dir, stack)
        yield Services(runtime, server.url, layout.capture)


def register_endpoint(runtime: OfflineRuntime, model_dir: Path, stack: ExitStack) -> None:
    """The served model, described in the offline SageMaker control plane as `deploy new` describes it on AWS
    (DescribeEndpoint -> DescribeModel names its sha256); its archive is in the offline bucket under models/."""
    import tempfile

    import boto3

    from data_prep.training.sagemaker_deploy import register_offline

    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scones-offline-model-")))
    register_offline(boto3.client("sagemaker", region_name=settings.OFFLINE_REGION), runtime.s3, model_dir,
                     runtime.template.parameters["EndpointName"], runtime.bucket, workdir)


def check_inputs(options: WorkflowOptions) -> None:
    """What can be checked before the first long step: a given model folder is complete, and its classes are the
    template's ClassNames (classify-image names each answer by them: another list fails or mislabels every image)."""
    if options.model_dir is not None:
        check_model_dir(options.model_dir)
        model_classes, stack_classes = model_class_names(options.model_dir), settings.class_names()
        if model_classes != stack_classes:
            raise ArtefactError(f"the model in {options.model_dir} was trained on {', '.join(model_classes)}, but "
                                f"template.yaml's ClassNames are {', '.join(stack_classes)}: set ClassNames to the "
                                "model's classes in their order, or train on those classes")


def reusable_dataset(options: WorkflowOptions) -> Path | None:
    """With a given model and no --source, the run's dataset when one is there (nothing is downloaded)."""
    dataset = options.layout.dataset
    if options.model_dir is None or options.source is not None or not is_dataset(dataset):
        return None
    model_classes = model_class_names(options.model_dir)
    dataset_classes = read_dataset_description(dataset).get("class_names")
    if dataset_classes != model_classes:
        raise ArtefactError(f"the dataset in {dataset} holds {dataset_classes}, but the model in "
                            f"{options.model_dir} was trained on {model_classes}: pass --source to rebuild it")
    return dataset


def prepare_model(options: WorkflowOptions, observer: RunObserver) -> tuple[Path, Path]:
    """(dataset folder, model folder): build the dataset (unless a given model can reuse the run's) and train
    unless a model is given."""
    from data_prep.dataset.build import build_dataset, fetch_archive

    check_inputs(options)
    layout = options.layout
    reused = reusable_dataset(options)
    if reused is not None and options.model_dir is not None:
        observer.note(f"dataset: {reused} (reused; --source rebuilds it)")
        return reused, options.model_dir
    source = options.source
    if source is None:
        with observer.progress("download", "bytes") as progress:
            source, _ = fetch_archive(options.urls, layout.cache, progress=progress, log=observer.note)
    with observer.progress("dataset", "images") as progress:
        # The template's ClassNames, in their order: the classes classify-image names each answer by.
        build_dataset(source, settings.class_names(), layout.dataset, test_fraction=0.2, progress=progress,
                      log=observer.note)
    if options.model_dir:
        return layout.dataset, options.model_dir
    from data_prep.training.local import train_local

    with observer.progress("training", "epochs") as progress:
        metrics = train_local(layout.dataset, layout.model, options.config, progress=progress, log=observer.note)
    observer.note(f"model: {layout.model} (validation accuracy {metrics['accuracy']}, coverage at "
                  f"{metrics['threshold']} {metrics['coverage']}, trained in {metrics['training_seconds']} s)")
    return layout.dataset, layout.model


def execute_test_images(runtime: OfflineRuntime, dataset: Path, keys: list[str], concurrency: int,
                        on_done: Callable[[Outcome], None] | None = None, deadline_s: float | None = None) -> Summary:
    """Stage the images (once each) and run one execution per key (keys may repeat).

    Each execution is awaited to its real end, however long its retries take; one still running
    past the state machine's worst case (from its TimeoutSeconds and Retry policies, or
    `deadline_s`) is stopped and counted as aborted, so the services never stop under it.
    """
    for key in sorted(set(keys)):
        runtime.put_image(key, (dataset / key).read_bytes())

    def run_one(key: str) -> Outcome:
        return run_execution(runtime.sfn, runtime.state_machine_arn, runtime.bucket, key,
                             poll_interval=0.02, max_poll_interval=0.5, bounds=runtime.bounds, timeout=deadline_s)

    return run_all(keys, run_one, concurrency=concurrency, on_done=on_done, labels=held_out_labels(dataset))


def run_verdict(report_verdict: dict[str, Any], summary: Summary) -> dict[str, Any]:
    """The run's verdict: the monitoring report's on the run's traffic (not a second opinion), made degraded when an
    execution failed unexpectedly (drift stays drift), with start-executions' FAILED line as its first reason. The
    report sees only what reached the endpoint: an image the workflow failed on before that is invisible to it."""
    from monitoring.report import DEGRADED, DRIFT, HEALTHY

    if not summary.unexpected:
        return dict(report_verdict)
    state = report_verdict["state"]
    kept = [] if state == HEALTHY else list(report_verdict.get("reasons", []))  # a healthy verdict's are all fine
    return {**report_verdict, "state": DRIFT if state == DRIFT else DEGRADED, "reasons": [summary.verdict(), *kept]}


def run_offline_workflow(options: WorkflowOptions, observer: RunObserver,
                         keep_running: Callable[[Services], None] | None = None) -> RunResult:
    """The whole run; with `keep_running`, it is called with the live services before they stop."""
    from monitoring.baseline import load_baseline
    from monitoring.quality import assess_source
    from monitoring.report import labels_from_dataset, report_summary, write_report
    from workflow.offline.drift_check import run_drift_function
    from workflow.offline.quality_check import run_quality_function, scheduled_checks_runtime

    layout = options.layout
    dataset, model_dir = prepare_model(options, observer)
    labels = labels_from_dataset(dataset, decode_all=True)  # every image decodes (else a named error), first
    keys = stratified_sample(held_out_labels(dataset), options.limit, options.seed)
    with services(model_dir, layout, expose_http=keep_running is not None, serve_api=keep_running is not None,
                  mirror=True, parameter_overrides=options.parameter_overrides) as running:
        observer.note(f"endpoint {running.endpoint_url}; Lambda API {running.runtime.lambda_url}; "
                      f"state machine {running.runtime.state_machine_arn}")
        with observer.progress("executions", "executions") as progress:
            finished: list[Outcome] = []

            def on_done(outcome: Outcome) -> None:
                finished.append(outcome)
                progress(len(finished), len(keys))

            summary = execute_test_images(running.runtime, dataset, keys, options.concurrency, on_done=on_done)
        events = count_by_type(running.runtime.events.drain())  # what reached dispatch, through EventBridge
        write_json(layout.summary, {**summary.as_dict(), "events": events})
        if keep_running is not None:
            keep_running(running)
    baseline = model_dir / BASELINE_FILE
    with scheduled_checks_runtime(lambda_log_dir=layout.lambda_logs,
                                  parameter_overrides=options.parameter_overrides) as checks:  # one start for both
        drift_check = run_drift_function(layout.capture, baseline, runtime=checks)
        quality_check = run_quality_function(layout.bucket, runtime=checks)
    write_json(layout.summary, {**summary.as_dict(), "events": events, "drift_check": drift_check,
                                "quality_check": quality_check})
    live = assess_source(str(layout.bucket), model_class_names(model_dir), settings.target_precision())
    page = write_report(layout.capture, layout.report, class_names=model_class_names(model_dir),
                        labels=labels, allow_empty=True,
                        baseline=load_baseline(baseline) if baseline.is_file() else None, live_quality=live)
    verdict = {**run_verdict(report_summary(page)["verdict"], summary), "report": str(page)}
    document = {"verdict": verdict, **summary.as_dict(), "events": events, "drift_check": drift_check,
                "quality_check": quality_check}
    write_json(layout.summary, document)
    loop = None
    if options.loop_labels is not None or options.loop_demo_labels:
        loop = close_loop(options, observer, dataset, model_dir, summary, keys)
        write_json(layout.summary, {**document, "loop": loop})
    return RunResult(summary, dataset, model_dir, page, drift_check, quality_check, layout.bucket, loop,
                     verdict=verdict)


def close_loop(options: WorkflowOptions, observer: RunObserver, dataset: Path, model_dir: Path, summary: Summary,
               keys: list[str]) -> dict[str, Any]:
    """Retrain on the labels of what was sent to review and gate the new model (see workflow.loop)."""
    from workflow.loop import demo_labels, run_loop

    layout = options.layout
    labels = options.loop_labels
    if labels is None:
        labels = demo_labels(dataset, layout.root / "demo-labels.jsonl")
        observer.note(f"loop: the test images' own labels stand in for reviewers ({labels})")
    reviewed = sorted(outcome.key for outcome in summary.outcomes if outcome.status == "review")
    with observer.progress("retraining", "epochs") as progress:
        result = run_loop(dataset, model_dir, layout, labels, reviewed, keys, options.config,
                          holdout=options.loop_holdout, progress=progress, log=observer.note)
    observer.note(f"loop: {result.labels_used} reviewed labels retrained {result.new_model}; gate on "
                  f"{result.gate['images']} held-back images: {result.decision}")
    return result.summary
