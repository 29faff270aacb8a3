"""Load: upload the transformed dataset to s3://<bucket>/<prefix>/, skipping what is already there.

An object is "already there" when its ETag is the local file's MD5 (true for single-part uploads,
which is how these small files are sent), so a second run uploads nothing. With dry_run, the plan
is computed and returned but nothing is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from common.errors import ExitStatus
from common.progress import Counter, Progress
from data_prep.errors import DataPrepError

CONTENT_TYPES = {".png": "image/png", ".lst": "text/plain", ".csv": "text/csv", ".json": "application/json"}


class StagingError(DataPrepError):
    """The bucket is missing: the message names it."""


class BucketAccessError(StagingError):
    """The credentials may not list or write the bucket (an environment problem: exit status 3)."""

    exit_status = ExitStatus.ENVIRONMENT


@dataclass
class StagePlan:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def to_upload(self) -> list[str]:
        return sorted(self.new + self.changed)


def default_bucket(session: Any, *, create: bool = True) -> str:
    """The SageMaker default bucket, sagemaker-<region>-<account>; created if missing unless `create` is False
    (a dry run creates nothing). The account comes from STS on `session`, so bad credentials fail here."""
    from common.aws import account_id

    name = f"sagemaker-{session.region_name}-{account_id(session)}"
    if not create:
        return name
    import sagemaker  # deferred: the SDK is heavy and only this path needs it

    return str(sagemaker.Session(boto_session=session).default_bucket())


@contextmanager
def _bucket_named(bucket: str) -> Iterator[None]:
    """A missing or forbidden bucket, named; any other AWS error (expired credentials, throttling) as it is, for
    the CLI runner to explain."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchBucket", "404"}:
            raise StagingError(f"bucket {bucket!r} does not exist (create it, or omit --bucket for SageMaker's "
                               "default)") from error
        if code in {"AccessDenied", "403", "AllAccessDisabled"}:
            raise BucketAccessError(f"access denied to bucket {bucket!r}: the credentials need s3:ListBucket and "
                                    "s3:PutObject") from error
        raise


def local_files(dataset: Path) -> dict[str, Path]:
    """Relative key -> path for everything transform wrote (PNGs, .lst, manifest, dataset.json)."""
    return {p.relative_to(dataset).as_posix(): p for p in sorted(dataset.rglob("*"))
            if p.is_file() and p.suffix in CONTENT_TYPES}


def remote_etags(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    etags = {}
    with _bucket_named(bucket):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
            for item in page.get("Contents", []):
                etags[item["Key"][len(prefix) + 1:]] = item["ETag"].strip('"')
    return etags


def plan(s3: Any, dataset: Path, bucket: str, prefix: str) -> StagePlan:
    remote = remote_etags(s3, bucket, prefix)
    result = StagePlan()
    for key, path in local_files(dataset).items():
        if key not in remote:
            result.new.append(key)
        elif remote[key] != hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest():
            result.changed.append(key)
        else:
            result.unchanged.append(key)
    return result


def upload(s3: Any, dataset: Path, bucket: str, prefix: str, keys: list[str],
           progress: Progress | None = None, workers: int = 8) -> int:
    done = Counter(progress, len(keys))

    def put(key: str) -> None:
        path = dataset / key
        with _bucket_named(bucket):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=path.read_bytes(),
                          ContentType=CONTENT_TYPES[path.suffix])
        done.advance()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, keys))
    return len(keys)
