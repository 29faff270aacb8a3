"""The dataset steps as library calls: fetch the archive, build the dataset folder, stage it in S3.

Commands (`python -m data_prep`, `python -m workflow run`) call these with a progress callback and
display what they report; nothing here prints.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import settings
from common.hints import hint
from common.progress import Progress
from data_prep.dataset import cifar, transform
from data_prep.errors import DataPrepError

if TYPE_CHECKING:
    from common.buckets import BucketChoice  # botocore: loaded by the staging step only


@dataclass(frozen=True)
class StageResult:
    bucket: str
    prefix: str
    new: list[str]
    changed: list[str]
    unchanged: list[str]
    uploaded: int
    bucket_created: bool = False  # the default bucket did not exist: this run made it
    bucket_missing: bool = False  # a dry run found no default bucket: the real run creates it


def fetch_archive(urls: Sequence[str], cache: Path, *, progress: Progress | None = None,
                  log: Callable[[str], None] | None = None,
                  local_copy_hint: str = "--source /path/to/cifar-100-python.tar.gz") -> tuple[Path, bool]:
    """(the verified CIFAR-100 archive in `cache`, whether it had to be downloaded).

    `local_copy_hint` is how the calling command takes a local copy, for the error when no URL answers."""
    from data_prep.dataset import extract  # requests is only needed here

    archive = cache / cifar.ARCHIVE_NAME
    fetched = extract.download(urls, archive, cifar.ARCHIVE_MD5, progress=progress,
                               log=log or (lambda message: None), local_copy_hint=local_copy_hint)
    return archive, fetched


def build_dataset(source: Path, classes: list[str] | None, out: Path, test_fraction: float, *,
                  progress: Progress | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """A CIFAR-100 archive or a `<label>/<image>` folder to the dataset layout in `out`.

    `log` receives warnings (a folder's hidden or empty sub-folders that are not taken as labels).
    """
    if source.is_dir():
        labelled = transform.scan_folder(source, classes, log=log)
        examples = transform.folder_examples(labelled, None, test_fraction)
        names = labelled.class_names
    elif source.is_file():
        names = classes or settings.class_names()  # the template's ClassNames
        with tempfile.TemporaryDirectory(prefix="cifar-") as scratch:
            transform.safe_extract(source, Path(scratch))
            examples = transform.cifar_examples(Path(scratch), names)
    elif not source.exists():
        raise DataPrepError(f"{source} does not exist: download it with `{hint('data_prep extract')}`, or pass "
                            "--source (a CIFAR-100 archive or a folder of <label>/ images)")
    else:
        raise DataPrepError(f"{source} is neither a CIFAR-100 archive nor a folder of <label>/ images")
    for split in transform.SPLITS:  # stale files from an earlier run with other classes must not linger
        shutil.rmtree(out / split, ignore_errors=True)
    return transform.write_dataset(examples, names, out, source=str(source), progress=progress)


def stage_dataset(s3: Any, dataset: Path, bucket: BucketChoice, prefix: str, *, dry_run: bool,
                  progress: Progress | None = None) -> StageResult:
    """Upload what is new or changed under s3://bucket/prefix/ (nothing with `dry_run`).

    The SageMaker default bucket (what the stack reads when DataBucketName is "") is created in the client's region
    when missing; a dry run creates nothing and plans every file as new there. A bucket the user named must exist.
    """
    from common.buckets import bucket_exists, ensure_bucket
    from data_prep.dataset import stage

    exists, created = True, False
    if bucket.is_default:
        if dry_run:
            exists = bucket_exists(s3, bucket)
        else:
            created = ensure_bucket(s3, bucket, s3.meta.region_name)
    plan = stage.plan(s3, dataset, bucket, prefix, bucket_exists=exists)
    uploaded = 0 if dry_run else stage.upload(s3, dataset, bucket, prefix, plan.to_upload, progress=progress)
    return StageResult(bucket.name, prefix, plan.new, plan.changed, plan.unchanged, uploaded,
                       bucket_created=created, bucket_missing=not exists)
