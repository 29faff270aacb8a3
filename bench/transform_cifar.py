"""Benchmark: full-size CIFAR-100 archive (50,000 train + 10,000 test rows) -> the PNGs of the template's ClassNames
(1,200 for bicycle and motorcycle).

Times what `python -m data_prep transform` does after the download: safe extraction, member checksums,
unpickling, class selection, PNG encoding, .lst files and manifest. Target: <= 10 s on 2 cores.

    .venv/bin/python -m bench.transform_cifar
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.results import record, this_command
from common import settings
from data_prep.dataset import transform
from testkit.cifar import make_cifar_archive

CLASSES = settings.class_names()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-cifar-") as scratch:
        root = Path(scratch)
        archive = root / "cifar-100-python.tar.gz"
        member_md5 = make_cifar_archive(archive, per_class=500, test_per_class=100)
        print(f"synthetic archive: {archive.stat().st_size / 1e6:.1f} MB")
        started = time.perf_counter()
        transform.safe_extract(archive, root / "extracted")
        extracted = time.perf_counter()
        examples = transform.cifar_examples(root / "extracted", CLASSES, member_md5)
        selected = time.perf_counter()
        transform.write_dataset(examples, CLASSES, root / "dataset", source=str(archive))
        finished = time.perf_counter()
    rows = 50_000 + 10_000
    total = finished - started
    print(f"extract {extracted - started:.2f} s, verify+unpickle+select {selected - extracted:.2f} s, "
          f"write {len(examples)} PNGs + lst + manifest {finished - selected:.2f} s")
    print(f"total {total:.2f} s for {rows:,} rows -> {len(examples)} images: {rows / total:,.0f} rows/s "
          f"(target <= 10 s: {'met' if total <= 10 else 'MISSED'})")
    record("transform_cifar", what="CIFAR-100 transform, 50,000 + 10,000 synthetic rows → 1,200 PNGs, `.lst`, "
                                   "manifest",
           result=f"{total:.1f} s ({rows / total:,.0f} rows/s)", target="≤ 10 s",
           command=this_command("bench.transform_cifar"))


if __name__ == "__main__":
    main()
