"""Benchmark: what one `train sagemaker` run costs, from the same training measured on this machine.

The job runs `train local`'s code (data_prep.training.sagemaker_entry) with the same TrainConfig on the default
instance, ml.m5.xlarge: 4 vCPUs = 2 physical cores, the trainer's 2 threads, as here. SageMaker bills training per
second of the instance, from the container's start to the upload of the artefact; the training itself is what
this measures (the container's start, the download of the staged dataset and `pip install -r requirements.txt`
come on top: read them off the job's TrainingTimeInSeconds once, they do not grow with the data). The price per
hour is the region's on-demand ML instance price for training (https://aws.amazon.com/sagemaker/pricing/); it
is an input: its default, $0.23 an hour for ml.m5.xlarge training in us-east-1, was read on 2026-12-07 from
third-party copies of that page's table (the page itself renders its prices in JavaScript); pass your region's.

    .venv/bin/python -m bench.sagemaker_training [--price-per-hour PRICE] [--data DIR] [--epochs N] [--members K]
        [--overhead-seconds S]   # run it on a quiet machine: timings on a busy one lie
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.results import duration_text, model_sha256_of, record, this_command
from common.settings import SHARED_TRAIN_IMAGES
from data_prep.training.config import TrainConfig
from data_prep.training.local import train_local
from data_prep.training.sagemaker_jobs import DEFAULT_INSTANCE_TYPE

DEFAULT_PRICE_PER_HOUR = 0.23  # ml.m5.xlarge training, on demand, us-east-1 (read 2026-12-07; see the docstring)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--price-per-hour", type=float, default=DEFAULT_PRICE_PER_HOUR,
                        help=f"on-demand USD per hour of {DEFAULT_INSTANCE_TYPE} for training, in your region "
                             f"(default {DEFAULT_PRICE_PER_HOUR}: us-east-1, read 2026-12-07)")
    parser.add_argument("--data", type=Path, default=SHARED_TRAIN_IMAGES, help="a dataset or <label>/<image> folder")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--members", type=int, default=TrainConfig.members)
    parser.add_argument("--overhead-seconds", type=float, default=0.0,
                        help="container start + data download + pip install, from a real job's TrainingTimeInSeconds")
    args = parser.parse_args()
    config = TrainConfig(epochs=args.epochs, members=args.members)
    with tempfile.TemporaryDirectory(prefix="bench-training-") as scratch:
        started = time.perf_counter()
        metrics = train_local(args.data, Path(scratch) / "model", config)
        seconds = time.perf_counter() - started
        sha256 = model_sha256_of(Path(scratch) / "model")  # the model this run trained
    billed = seconds + args.overhead_seconds
    print(json.dumps({"instance_type": DEFAULT_INSTANCE_TYPE, "config": config.as_dict(),
                      "training_seconds": round(seconds, 1), "billed_seconds": round(billed, 1),
                      "price_per_hour": args.price_per_hour,
                      "cost_usd": round(billed / 3600 * args.price_per_hour, 4),
                      "accuracy": metrics.get("accuracy")}, indent=2))
    cost = billed / 3600 * args.price_per_hour
    record("sagemaker_training",
           what=f"one `train sagemaker` run on {DEFAULT_INSTANCE_TYPE}: the same training timed here (2 cores, the "
                f"trainer's 2 threads), billed at ${args.price_per_hour}/hour"
                + (f" with {args.overhead_seconds:g} s of container overhead" if args.overhead_seconds else
                   " (container start, data download and pip install come on top)"),
           result=f"training {duration_text(seconds)}; ${cost:.3f} per run",
           command=this_command("bench.sagemaker_training"),
           quotes={"time": duration_text(seconds), "cost": f"${cost:.3f}",
                   "time_cost": f"{duration_text(seconds)} of training, ${cost:.3f}"}, model_sha256=sha256)


if __name__ == "__main__":
    main()
