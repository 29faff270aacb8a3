"""Benchmark: `classify-prefix --offline` over N images: images/s through the batch machine, none lost.

Writes N image files (the dataset's or shared images, cycled, each under its own name) into a folder and
runs the same library call as `python -m workflow classify-prefix --offline`: staging into the local
bucket, the batch state machine's Distributed Map (each object a child execution of the EXPRESS
machine with the real handlers and model), the summary object, the events. Prints objects/s (from the
start of the batch execution to its summary, staging excluded) and the accounting: classified + review
+ failed == N, and one event per classified or reviewed object.

    .venv/bin/python -m bench.batch --model-dir out/model [--images 1000] [--max-concurrency 20]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.results import model_sha256_of, record, this_command
from common.progress import Progress
from common.settings import SHARED_TRAIN_IMAGES
from workflow.offline_doors import classify_folder


class Quiet:
    """No progress bars (the benchmark prints its own lines)."""

    def note(self, message: str) -> None:
        pass

    @contextmanager
    def progress(self, description: str, unit: str) -> Iterator[Progress]:
        yield lambda done, total, note="": None


def write_images(folder: Path, count: int, dataset: Path | None) -> None:
    pool = sorted((dataset / "test").glob("*.png")) if dataset else sorted(SHARED_TRAIN_IMAGES.rglob("*.png"))
    if not pool:
        from testkit.images import png_bytes

        sources = [png_bytes(seed=i) for i in range(50)]
    else:
        sources = [path.read_bytes() for path in pool]
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:05d}.png").write_bytes(sources[i % len(sources)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--dataset", type=Path, help="Take the images from this dataset's test/ folder.")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--max-concurrency", type=int, help="Default: the batch state machine's (20).")
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        model_dir = args.model_dir
        if model_dir is None:
            from bench.workflow_throughput import prepare

            _, model_dir = prepare(Path(scratch))
        sha256 = model_sha256_of(model_dir)  # which model classified the batch
        folder = Path(scratch) / "images"
        write_images(folder, args.images, args.dataset)
        summary = classify_folder(model_dir, folder, Path(scratch) / "out", Quiet(),
                                  max_concurrency=args.max_concurrency)
    counts = {name: summary[name]["count"] for name in ("classified", "review", "failed")}
    accounted = sum(counts.values())
    events = summary["events"]
    print(f"{args.images} images, max concurrency {args.max_concurrency or 'default (20)'}: {summary['status']}")
    print(f"accounted for: {counts['classified']} classified + {counts['review']} in review + {counts['failed']} "
          f"failed {summary['failed']['keys'] if counts['failed'] else ''}= {accounted} "
          f"({'none lost' if accounted == args.images == summary['objects'] else 'LOST'})")
    matched = (events.get("VehicleClassified"), events.get("VehicleNeedsReview")) == (counts["classified"],
                                                                                      counts["review"])
    print(f"events: {events} ({'one per decision' if matched else 'MISMATCH'})")
    print(f"throughput {summary['objects_per_second']} images/s ({summary['elapsed_s']} s for the batch execution)")
    record("batch", what=f"batch: `classify-prefix --offline`, {args.images:,} images",
           result=f"{summary['objects_per_second']} images/s ({summary['elapsed_s']:.0f} s for the batch execution); "
                  f"{counts['classified']} classified + {counts['review']} in review + {counts['failed']} failed = "
                  f"{accounted}{', none lost' if accounted == args.images else ' (LOST)'}; events: "
                  f"{events.get('VehicleClassified', 0)} `VehicleClassified`, {events.get('VehicleNeedsReview', 0)} "
                  "`VehicleNeedsReview`",
           target="none lost", command=this_command("bench.batch"), model_sha256=sha256)


if __name__ == "__main__":
    main()
