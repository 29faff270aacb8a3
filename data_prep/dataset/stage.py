"""Load: upload the transformed dataset to s3://<bucket>/<prefix>/, skipping what is already there.

An object is "already there" when its ETag is the local file's MD5 (true for single-part uploads,
which is how these small files are sent), so a second run uploads nothing. With dry_run, the plan
is computed and returned but nothing is written.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.buckets import BucketChoice, named_bucket_errors
from common.progress import Counter, Progress

CONTENT_TYPES = {".png": "image/png", ".lst": "text/plain", ".csv": "text/csv", ".json": "application/json"}


@dataclass
class StagePlan:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def to_upload(self) -> list[str]:
        return sorted(self.new + self.changed)


STAGE_NEEDS = "s3:ListBucket and s3:PutObject"


def local_files(dataset: Path) -> dict[str, Path]:
    """Relative key -> path for everything transform wrote (PNGs, .lst, manifest, dataset.json)."""
    return {p.relative_to(dataset).as_posix(): p for p in sorted(dataset.rglob("*"))
            if p.is_file() and p.suffix in CONTENT_TYPES}


def remote_etags(s3: Any, bucket: BucketChoice, prefix: str) -> dict[str, str]:
    etags = {}
    with named_bucket_errors(bucket, STAGE_NEEDS):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.name, Prefix=f"{prefix}/"):
            for item in page.get("Contents", []):
                etags[item["Key"][len(prefix) + 1:]] = item["ETag"].strip('"')
    return etags


def plan(s3: Any, dataset: Path, bucket: BucketChoice, prefix: str, *, bucket_exists: bool = True) -> StagePlan:
    """What is new, changed and unchanged under s3://bucket/prefix/; every file is new in a bucket that does not
    exist yet (the default bucket, before the first real stage creates it)."""
    remote = remote_etags(s3, bucket, prefix) if bucket_exists else {}
    result = StagePlan()
    for key, path in local_files(dataset).items():
        if key not in remote:
            result.new.append(key)
        elif remote[key] != hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest():
            result.changed.append(key)
        else:
            result.unchanged.append(key)
    return result


def upload(s3: Any, dataset: Path, bucket: BucketChoice, prefix: str, keys: list[str],
           progress: Progress | None = None, workers: int = 8) -> int:
    done = Counter(progress, len(keys))

    def put(key: str) -> None:
        path = dataset / key
        with named_bucket_errors(bucket, STAGE_NEEDS):
            s3.put_object(Bucket=bucket.name, Key=f"{prefix}/{key}", Body=path.read_bytes(),
                          ContentType=CONTENT_TYPES[path.suffix])
        done.advance()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, keys))
    return len(keys)
