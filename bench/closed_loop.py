"""Benchmark: the closed loop offline, end to end, on the real images: `workflow run --loop-demo-labels`.

The first pass sends the unsure test images to review, the test set's own labels stand in for reviewers, the model is
retrained on the reviewed images outside the held-back half, and the gate compares both models on that half
(workflow/loop.py). Records the gate's metrics (old -> new, difference and its 95% interval), its verdict and the
time end to end.

    .venv/bin/python -m bench.closed_loop [--source DIR] [--members N --epochs N]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from bench.batch import Quiet
from bench.results import duration_text, record, this_command
from common.settings import SHARED_TRAIN_IMAGES
from data_prep.training.config import TrainConfig
from data_prep.training.evaluate import table_rows
from workflow.offline_run import WorkflowOptions, run_offline_workflow


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=SHARED_TRAIN_IMAGES)
    parser.add_argument("--members", type=int, default=TrainConfig.members)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as scratch:
        options = WorkflowOptions(out=Path(scratch) / "out", source=args.source, loop_demo_labels=True,
                                  config=TrainConfig(members=args.members, epochs=args.epochs))
        started = time.perf_counter()
        result = run_offline_workflow(options, Quiet())
        seconds = time.perf_counter() - started
    loop = result.loop or {}
    gate = loop["gate"]
    rows = {row["metric"]: row for row in table_rows(gate)}
    metrics = "; ".join(f"{name} {row['baseline']} → {row['new']} ({row['difference']}, 95% interval "
                        f"{row['interval']})" for name, row in rows.items())
    print(f"{metrics}; gate: {loop['decision']}; {duration_text(seconds)} end to end")
    accuracy = rows["accuracy"]
    record("closed_loop", what=f"closed loop: `workflow run --loop-demo-labels` on {args.source.name}: "
                               f"{loop['sent_to_review']} test images sent to review, {loop['used_for_training']} "
                               f"of them outside the held-back half retrained the model; both models on the "
                               f"{loop['held_back_images']} held-back images",
           result=f"{metrics}; gate: **{loop['decision']}**; {duration_text(seconds)} end to end",
           command=this_command("bench.closed_loop"),
           quotes={"images": f"retrain on {loop['used_for_training']} reviewed images, gate on "
                             f"{loop['held_back_images']} held-back ones",
                   "headline": f"accuracy {accuracy['difference']} {accuracy['interval']}; gate: {loop['decision']}"})


if __name__ == "__main__":
    main()
