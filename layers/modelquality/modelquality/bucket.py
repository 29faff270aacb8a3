"""The data bucket as the quality check reads it: S3 itself, or a folder that mirrors it (what `python -m workflow
run --out OUT` leaves in OUT/bucket, or `aws s3 sync` makes). Listing and reading only; nothing is written here (the
review page's stores, review.store, build on these readers and add the writing of labels).

Both readers agree on what is there: hidden names (a leading dot) and the S3 console's folder markers (empty keys
ending in `/`, made by "Create folder") are not objects, and reading an object that is not there (a label undone
between the listing and the read) raises FileNotFoundError. Any other refusal (access denied, throttling) is raised
as it is: it is not an absence.
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from modelquality.errors import SourceError, WindowTooLargeError

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
FORBIDDEN = frozenset({"403", "AccessDenied"})
WORKFLOW_RUN = ".venv/bin/python -m workflow run"  # what leaves a mirror on disk (common.hints, as printed)


@dataclass(frozen=True)
class StoredObject:
    key: str
    modified: datetime | None  # S3's LastModified; None in a folder (a mirror's file times say when it was copied)


class Bucket(Protocol):
    description: str

    def objects(self, prefix: str) -> Iterable[StoredObject]: ...

    def read(self, key: str) -> bytes: ...

    def holds(self, uri_bucket: str, key: str) -> bool: ...


class FolderBucket:
    """A folder laid out as the bucket: `review/`, `audit/`, `labels/` and the images under their keys."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise SourceError(f"{root} is not a folder: give s3://bucket or a folder that mirrors one (the OUT/bucket "
                              f"a `{WORKFLOW_RUN} --out OUT` leaves)")
        self.root = root
        self.description = str(root)

    def _path(self, key: str) -> Path | None:
        path = (self.root / key).resolve()
        return path if path.is_relative_to(self.root.resolve()) else None

    def objects(self, prefix: str) -> list[StoredObject]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(self.root).as_posix()
            if path.is_file() and not any(part.startswith(".") for part in relative.split("/")):
                found.append(StoredObject(relative, None))
        return found

    def read(self, key: str) -> bytes:
        path = self._path(key)
        if path is None:
            raise FileNotFoundError(f"{key} is outside {self.root}")
        return path.read_bytes()

    def holds(self, uri_bucket: str, key: str) -> bool:
        """Whether the mirror holds `key` (it mirrors one bucket, whatever its name)."""
        path = self._path(key)
        return path is not None and path.is_file()


class S3Bucket:
    """The bucket itself; `s3` is a boto3 S3 client (thread-safe: reads may run in parallel).

    With `time_left` (seconds left to the caller, such as a Lambda invocation's remaining time less a margin), each
    page listed and each object read first checks it, and when it has run out raises WindowTooLargeError saying how
    far it got: a scheduled check fails by name rather than being cut off by its timeout. `listed` and `reads` count
    what was listed and read."""

    PAGE = 1000  # keys per ListObjectsV2 page (its maximum)

    def __init__(self, s3: Any, bucket: str, *, time_left: Callable[[], float] | None = None,
                 forbidden_is_missing: bool = False) -> None:
        self.s3 = s3
        # A role that may list the bucket only under some prefixes is answered 403 AccessDenied, not 404, for a key
        # that is gone (S3 tells missing from forbidden only to a lister): for such a role, reading keys it has
        # just listed under prefixes it may read, a 403 means the key went away in between (an undone label).
        self.not_found = NOT_FOUND | FORBIDDEN if forbidden_is_missing else NOT_FOUND
        self.bucket = bucket
        self.description = f"s3://{bucket}"
        self.time_left = time_left
        self.listed = 0
        self.reads = 0
        self._lock = threading.Lock()

    def _in_time(self) -> None:
        if self.time_left is not None and self.time_left() <= 0:
            raise WindowTooLargeError(
                f"the check ran out of time in {self.description} after listing {self.listed} keys and reading "
                f"{self.reads} objects: the window holds more records than one run gets through (shorten "
                "QualityWindowHours, or expire old review/ and audit/ records: docs/monitoring.md, how far the "
                "scheduled check scales)")

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        """The objects under `prefix`, page by page (a generator: the caller keeps only what it needs)."""
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix,
                                                                      PaginationConfig={"PageSize": self.PAGE}):
            self._in_time()
            contents = page.get("Contents", [])
            with self._lock:
                self.listed += len(contents)
            for item in contents:
                key = item["Key"]
                if not key.endswith("/") and not posixpath.basename(key).startswith("."):
                    yield StoredObject(key, item.get("LastModified"))

    def read(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when there is none (as a folder says it)."""
        from botocore.exceptions import ClientError

        self._in_time()
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) in self.not_found:
                raise FileNotFoundError(2, "no such object", f"s3://{self.bucket}/{key}") from error
            raise
        with self._lock:
            self.reads += 1
        return body

    def holds(self, uri_bucket: str, key: str) -> bool:
        if uri_bucket != self.bucket:
            return False
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) in NOT_FOUND:
                return False
            raise
        return True
