"""The API and batch doors offline, over a trained model: the same services as `workflow run`.

`serve_api` starts the local endpoint (with data capture), the offline runtime and the template's
classification API, and hands them to a callback (the CLI prints how to call them and waits).
`classify_folder` stages a folder of images into the local bucket and runs the batch state machine
over them, exactly as `classify-prefix` does on AWS, then adds what reached the local EventBridge.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import settings
from common.artefacts import visible_files, write_json
from common.errors import InputError
from common.progress import Progress
from workflow.batch import classify_prefix, download_results
from workflow.offline.events import count_by_type
from workflow.offline_run import RunObserver, Services, services

BATCH_PREFIX = settings.batch_prefix()  # the template's BatchPrefix: where the batch may list on AWS too


def serve_api(model_dir: Path, out: Path, port: int, ready: Callable[[Services], None]) -> None:
    """Endpoint + runtime + API until `ready` returns (the CLI waits for Ctrl-C in it); the bucket (review
    records of 202 answers included) is left in `out/bucket` for `python -m review serve`."""
    with services(model_dir, settings.Layout(out), serve_api=True, api_port=port, mirror=True) as running:
        ready(running)


def folder_files(folder: Path) -> list[Path]:
    """Every file under `folder` (hidden ones excluded), in a stable order."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of images")
    files = visible_files(folder)
    if not files:
        raise InputError(f"{folder} holds no files to classify")
    return files


def stage_folder(s3: Any, bucket: str, folder: Path, files: list[Path], prefix: str,
                 progress: Progress | None = None) -> list[str]:
    """Upload each of `files` (under `folder`) to s3://bucket/<prefix><path relative to the folder>; the keys."""
    keys = []
    for done, path in enumerate(files, start=1):
        key = prefix + path.relative_to(folder).as_posix()
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
        if progress is not None:
            progress(done, len(files))
    return keys


def name_the_users_files(results: Path, prefix: str) -> None:
    """results.csv keeps the AWS columns (key,label,confidence,outcome,error), its keys made the user's files: each
    staged key `<prefix><path>` becomes `<path>`, the file's path relative to the folder given (--prefix)."""
    with results.open(newline="") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        if row and row[0].startswith(prefix):
            row[0] = row[0][len(prefix):]
    partial = results.with_name(f".{results.name}.part")
    with partial.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    partial.replace(results)


def classify_folder(model_dir: Path, folder: Path, out: Path, observer: RunObserver, *,
                    max_concurrency: int | None = None, tolerated_failure_percentage: float | None = None,
                    ) -> dict[str, Any]:
    """The batch over a folder, offline; writes and returns `out/batch_summary.json`, writes `out/results.csv` (one
    row per file: key,label,confidence,outcome,error; the key is the file's path relative to `folder`) and leaves
    the bucket (the review records of the objects sent to review included) in `out/bucket`, as `workflow run`
    does."""
    files = folder_files(folder)
    layout = settings.Layout(out)
    prefix = f"{BATCH_PREFIX}{folder.resolve().name or 'images'}/"
    with services(model_dir, layout, mirror=True) as running:
        runtime = running.runtime
        with observer.progress("staging", "images") as progress:
            stage_folder(runtime.s3, runtime.bucket, folder, files, prefix, progress)
        with observer.progress("classifying", "objects") as progress:
            summary = classify_prefix(runtime.sfn, runtime.s3, runtime.batch_state_machine_arn, runtime.bucket,
                                      prefix, results_bucket=runtime.bucket, progress=progress, expected=len(files),
                                      poll_interval=0.1, timeout=3600, max_concurrency=max_concurrency,
                                      tolerated_failure_percentage=tolerated_failure_percentage)
        summary["events"] = count_by_type(runtime.events.drain())
        summary["source"] = str(folder)
        summary["bucket_dir"] = str(layout.bucket)
        results = download_results(runtime.s3, summary, layout.batch_results)
        if results is not None:
            name_the_users_files(results, prefix)
        summary["results_file"] = str(results) if results else None
    write_json(layout.batch_summary, summary)
    return summary
