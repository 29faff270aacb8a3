"""The data bucket as the quality check reads it: S3 itself, or a folder that mirrors it (what `python -m workflow
run --out OUT` leaves in OUT/bucket, or `aws s3 sync` makes). Listing and reading only; nothing is written.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from modelquality.errors import SourceError

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class StoredObject:
    key: str
    modified: datetime | None  # S3's LastModified; None in a folder (a mirror's file times say when it was copied)


class Bucket(Protocol):
    description: str

    def objects(self, prefix: str) -> list[StoredObject]: ...

    def read(self, key: str) -> bytes: ...

    def holds(self, uri_bucket: str, key: str) -> bool: ...


class FolderBucket:
    """A folder laid out as the bucket: `review/`, `audit/`, `labels/` and the images under their keys."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise SourceError(f"{root} is not a folder: give s3://bucket or a folder that mirrors one (the OUT/bucket "
                              "a `.venv/bin/python -m workflow run --out OUT` leaves)")
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
    """The bucket itself; `s3` is a boto3 S3 client."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.description = f"s3://{bucket}"

    def objects(self, prefix: str) -> list[StoredObject]:
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not posixpath.basename(item["Key"]).startswith("."):
                    found.append(StoredObject(item["Key"], item.get("LastModified")))
        return found

    def read(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
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
