"""Benchmark: the default local model on real CIFAR-100 images, over 3 seeds.

Trains `python -m data_prep train --local`'s default configuration on the shared real images
(80% by path hash; the other 20% never seen in training or calibration) and reports accuracy,
coverage at the 0.93 threshold, precision among the covered, and training time: mean ± spread.

    .venv/bin/python -m bench.model_quality [--data DIR] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from data_prep.model.local import train_local
from data_prep.model.train import TrainConfig

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar100_bicycle_motorcycle" / "train"
METRICS = ("accuracy", "coverage", "precision_at_threshold", "log_loss", "training_seconds")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, help="Write the per-seed metrics as JSON here.")
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as model_dir:
            metrics = train_local(args.data, Path(model_dir), TrainConfig(seed=seed))
        runs.append(metrics)
        print(f"seed {seed}: " + ", ".join(f"{m} {metrics[m]}" for m in METRICS), flush=True)
    print(f"{len(runs)} seeds, {runs[0]['count']} held-out images, {runs[0]['train_count']} training images:")
    for metric in METRICS:
        values = [run[metric] for run in runs]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"  {metric:24s} {statistics.mean(values):.4f} ± {spread:.4f}  (min {min(values)}, max {max(values)})")
    if args.out:
        args.out.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
