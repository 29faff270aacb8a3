"""Benchmark: executions through the real ASL, handlers and model, offline; every input accounted for.

Starts the local endpoint on a model and the offline runtime, stages the dataset's test images and
runs N executions (cycling over the images) with bounded concurrency. Prints executions/s, latency
percentiles and the accounting: succeeded + in review + failed (by error name) == N.
Targets: >= 20 executions/s, p50 <= 100 ms, 1,000 executions with none lost.

    .venv/bin/python -m bench.workflow_throughput --dataset out/dataset --model-dir out/model
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from bench.results import model_sha256_of, record, this_command
from common import settings
from common.artefacts import held_out_labels
from common.settings import SHARED_TRAIN_IMAGES, Layout
from workflow.offline_run import execute_test_images, services


def prepare(scratch: Path) -> tuple[Path, Path]:
    """A dataset from the shared images (or generated ones) and a model of the default architecture."""
    from data_prep.dataset import transform
    from data_prep.training.local import train_local
    from data_prep.training.train import TrainConfig
    from testkit.images import labelled_folder

    source = SHARED_TRAIN_IMAGES if SHARED_TRAIN_IMAGES.is_dir() else labelled_folder(scratch / "images", per_class=100,
                                                                                           classes=settings.class_names())
    examples = transform.folder_examples(source, None, 0.2)
    transform.write_dataset(examples, transform.folder_labels(source), scratch / "dataset", source=str(source))
    train_local(scratch / "dataset", scratch / "model", TrainConfig(epochs=2))  # speed does not depend on weights
    return scratch / "dataset", scratch / "model"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="bench-workflow-") as scratch:
        dataset, model_dir = (args.dataset, args.model_dir) if args.dataset and args.model_dir else prepare(
            Path(scratch))
        sha256 = model_sha256_of(model_dir)  # which model served the executions
        images = sorted(held_out_labels(dataset))
        keys = [images[i % len(images)] for i in range(args.executions)]
        with services(model_dir, Layout(Path(scratch) / "run")) as running:
            runtime = running.runtime
            summary = execute_test_images(runtime, dataset, keys, args.concurrency)
            executions = len(runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn,
                                                         maxResults=1000)["executions"])
    data = summary.as_dict()
    accounted = data["succeeded"] + data["review"] + data["failed"] + data["aborted"]
    print(f"{data['executions']} executions ({args.concurrency} in flight), {executions}+ seen by Step Functions")
    print(f"accounted for: {data['succeeded']} succeeded + {data['review']} in review + {data['failed']} failed "
          f"{data['failed_by_error'] or ''} + {data['aborted']} aborted = {accounted} "
          f"({'none lost' if accounted == args.executions else 'LOST'})")
    print(f"throughput {data['executions_per_second']} executions/s (target >= 20: "
          f"{'met' if data['executions_per_second'] >= 20 else 'MISSED'})")
    print(f"latency p50 {data['latency_p50_ms']} ms, p95 {data['latency_p95_ms']} ms (target p50 <= 100 ms: "
          f"{'met' if data['latency_p50_ms'] <= 100 else 'MISSED'})")
    lost = "none lost" if accounted == args.executions else f"{args.executions - accounted} LOST"
    record("workflow_throughput", what=f"offline workflow: {args.executions:,} executions, real ASL + handlers + "
                                       "trained model",
           result=f"{data['executions_per_second']} executions/s, p50 {data['latency_p50_ms']:.0f} ms, p95 "
                  f"{data['latency_p95_ms']:.0f} ms; {data['succeeded']} succeeded + {data['review']} in review + "
                  f"{data['failed']} failed + {data['aborted']} aborted",
           target="≥ 20/s, ≤ 100 ms, none lost", command=this_command("bench.workflow_throughput"),
           quotes={"throughput": f"{data['executions_per_second']} executions/s, p95 {data['latency_p95_ms']:.0f} ms, "
                                 f"{lost}",
                   "review_share": f"{data['review'] / data['executions']:.1%}"},  # docs/cost.md's traffic mix
           model_sha256=sha256)


if __name__ == "__main__":
    main()
