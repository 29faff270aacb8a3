"""Scenario: the served model becomes confidently wrong on one class; do live quality and its alarm see it?

Two offline runs of the workflow (the endpoint with capture, the real state machine on every test image, the bucket
left on disk, as `python -m workflow run --audit-rate 1` does: every confident decision audited) on the same test
images: one serving the model as trained, one serving a copy that reads every `wrong_on`
image as `read_as` at about 0.99 (testkit.models.confidently_wrong: nothing in its confidence gives it away, so
the drift check and the low-confidence alarm see little). Then the audits get their labels, as reviewers would
give them (the test split's own labels, written to OUT/<run>/bucket/labels/ground-truth.jsonl), and for each run
`python -m monitoring quality` judges them and the scheduled CheckQualityFunction runs offline, its
ModelQualityAlarm evaluated on what it published.

Expected: the confidently wrong model exits 1 naming the class it is wrong about, and its alarm is ALARM; the
model as trained does not exit 1 (0, or 2 with too few audits for the target) and its alarm is OK, unless the
model itself is below the target (the default model's automatic decisions are not 99% right on real images:
pass --target-precision to see it judged against another target).

    .venv/bin/python -m bench.quality_scenario [--model-dir out/model] [--dataset out/dataset]
        [--out out/quality-scenario] [--wrong-on motorcycle] [--read-as bicycle] [--target-precision P] [--limit N]
"""

from __future__ import annotations

import argparse
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import model_sha256_of, record, this_command
from common import settings
from common.artefacts import dataset_ground_truth, held_out_labels, write_ground_truth_manifest
from common.hints import hint
from common.stats import stratified_sample
from monitoring.quality import assess_source
from testkit.models import confidently_wrong
from workflow.offline.quality_check import run_quality_function
from workflow.offline_run import execute_test_images, services


@dataclass(frozen=True)
class ScenarioRun:
    name: str
    model_dir: Path
    out: Path
    run: dict[str, Any]  # the run's summary
    quality: dict[str, Any]  # `monitoring quality`'s report
    function: dict[str, Any]  # the CheckQualityFunction's result and its alarms' states


def run_model(name: str, model_dir: Path, dataset: Path, out: Path, *, target: float, limit: int | None = None,
              concurrency: int = 2) -> ScenarioRun:
    """One offline run serving `model_dir` with every confident decision audited, the audits labelled, judged."""
    shutil.rmtree(out, ignore_errors=True)
    layout = settings.Layout(out)
    keys = stratified_sample(held_out_labels(dataset), limit)
    with services(model_dir, layout, mirror=True, parameter_overrides={"AuditRate": "1"}) as running:
        summary = execute_test_images(running.runtime, dataset, keys, concurrency)
    bucket = layout.bucket
    write_ground_truth_manifest(bucket / "labels" / "ground-truth.jsonl",
                                dataset_ground_truth(dataset, "test", settings.OFFLINE_BUCKET))
    quality = assess_source(str(bucket), settings.class_names(), target).as_dict()
    function = run_quality_function(bucket, lambda_log_dir=settings.Layout(out).lambda_logs,
                                    parameter_overrides={"TargetPrecision": str(target)})
    return ScenarioRun(name, model_dir, out, summary.as_dict(), quality, function)


def run_scenario(model_dir: Path, dataset: Path, out: Path, *, wrong_on: str, read_as: str, target: float,
                 limit: int | None = None, concurrency: int = 2) -> list[ScenarioRun]:
    wrong = confidently_wrong(model_dir, out / "wrong-model", wrong_on=wrong_on, read_as=read_as)
    return [run_model("as trained", model_dir, dataset, out / "as-trained", target=target, limit=limit,
                      concurrency=concurrency),
            run_model(f"{wrong_on} read as {read_as}", wrong, dataset, out / "confidently-wrong", target=target,
                      limit=limit, concurrency=concurrency)]


def shown_precision(quality: dict[str, Any]) -> str:
    """`0.965 [0.902, 0.988]`: a run's precision and its 95% interval as the docs quote them."""
    if quality["precision"] is None:
        return "n/a"
    interval = quality["precision_interval"]
    return f"{quality['precision']:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def record_runs(runs: list[ScenarioRun], target: float, model_sha256: str) -> None:
    """The Measured row (each run: sent to review, audited, precision, the exit status with `monitoring quality`'s
    reason, which names the worst class and the most frequent misreading, and the alarm) and the precisions other
    pages quote. Against the template's TargetPrecision it is `quality_scenario`; another target gets its own row."""
    name = ("quality_scenario" if target == settings.target_precision()
            else "quality_scenario_target_" + f"{target:g}".replace(".", "_"))
    as_trained, wrong = runs
    record(name, what=f"live quality scenario on the real images: every confident decision audited and labelled, the "
                      f"model as trained and a copy confidently wrong on one class ({wrong.name}), target "
                      f"precision {target}",
           result="; ".join(f"{run.name}: {run.run['review']} of {run.run['executions']} sent to review, "
                            f"{run.quality['audited']} audited, precision {shown_precision(run.quality)}: exit "
                            f"{run.quality['exit_status']} ({run.quality['reason']}), ModelQualityAlarm "
                            f"{run.function['alarms']['ModelQualityAlarm']['state']}" for run in runs),
           command=this_command("bench.quality_scenario"),
           quotes={"as_trained_precision": shown_precision(as_trained.quality),
                   "wrong_precision": shown_precision(wrong.quality)}, model_sha256=model_sha256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=settings.DEFAULT_LAYOUT.model)
    parser.add_argument("--dataset", type=Path, default=settings.DEFAULT_LAYOUT.dataset)
    parser.add_argument("--out", type=Path, default=settings.DEFAULT_LAYOUT.root / "quality-scenario")
    parser.add_argument("--wrong-on", default=settings.class_names()[1])
    parser.add_argument("--read-as", default=settings.class_names()[0])
    parser.add_argument("--target-precision", type=float, default=settings.target_precision())
    parser.add_argument("--limit", type=int, help="A stratified sample of N test images (default: all).")
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # moto logs every failed state at WARNING, tree and all
    runs = run_scenario(args.model_dir, args.dataset, args.out, wrong_on=args.wrong_on, read_as=args.read_as,
                        target=args.target_precision, limit=args.limit)
    print(f"target precision {args.target_precision}; every confident decision audited and labelled")
    print(f"{'served model':<28} {'sent to review':>14} {'audited':>8} {'precision':>10} {'95% interval':>17} "
          f"{'exit':>5} {'ModelQualityAlarm':>18}")
    for run in runs:
        interval = run.quality["precision_interval"]
        shown = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "n/a"
        precision = "n/a" if run.quality["precision"] is None else f"{run.quality['precision']:.3f}"
        print(f"{run.name:<28} {run.run['review']:>14} {run.quality['audited']:>8} {precision:>10} {shown:>17} "
              f"{run.quality['exit_status']:>5} {run.function['alarms']['ModelQualityAlarm']['state']:>18}")
    for run in runs:
        print(f"{run.name}: {run.quality['reason']} ({hint('monitoring quality')} --source {run.out / 'bucket'})")
    record_runs(runs, args.target_precision, model_sha256_of(args.model_dir))


if __name__ == "__main__":
    main()
