"""Where the review queue lives: the stack's review bucket on S3, or a folder that mirrors a bucket.

The workflow writes one record per low-confidence decision, `review/<id>.json`, and one per confident decision
chosen for a blind audit, `audit/<id>.json` (`s3_bucket`, `s3_key`, `content_sha256`, `inferences`,
`prediction`, `recorded_at`, ...: modelquality.records); a person's answer is one object,
`labels/<content hash>.jsonl`, a Ground Truth line. A label is for an image, not an execution: every
decision on the same picture (a rerun, a retry, the same photo under another key) shares it (records
written before content hashes keep `labels/<id>.jsonl`). Both stores create that object only if it does
not exist yet, atomically, so two reviewers (two pages, or two servers on one bucket, or two executions
of one image) can never both label an image:

- S3: PutObject with `If-None-Match: *` (S3 conditional writes): the second writer gets 412
  PreconditionFailed, or 409 ConditionalRequestConflict while the first is still in flight;
- a folder: the line is written to a hidden temporary file and fsynced, then hard-linked to its name,
  which fails if the name exists (link(2) is atomic and exclusive, like O_EXCL, but the label appears
  whole or not at all).

Labels are durable before a reviewer is told they were saved: a restart loses none.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from common.artefacts import is_s3_uri
from common.errors import EnvironmentProblem, InputError
from modelquality.bucket import FolderBucket, S3Bucket
from modelquality.records import (  # noqa: F401 - the record and label layout has its one home there
    AUDIT_PREFIX,
    ITEM_ID,
    LABEL_SUFFIX,
    LABELS_PREFIX,
    RECORD_SUFFIX,
    REVIEW_PREFIX,
    label_key,
    record_id,
)
from modelquality.records import label_name as label_id
from monitoring.quality import open_bucket


class ReviewSourceError(InputError):
    """The review source is not a bucket or a folder that can be read."""


class ReviewSourceUnavailableError(EnvironmentProblem):
    """The review bucket cannot be reached: no bucket, no access, no credentials."""


class ImageMissingError(InputError):
    """The image a review record points at is not where the record says."""


def item_id(key: str) -> str | None:
    """`review/<id>.json` or `audit/<id>.json` to its id; None for any other key."""
    return record_id(key, REVIEW_PREFIX) or record_id(key, AUDIT_PREFIX)


class Store(Protocol):
    """What the review queue needs of a bucket."""

    description: str

    def review_keys(self) -> list[str]: ...

    def audit_keys(self) -> list[str]: ...

    def read(self, key: str) -> bytes: ...

    def label_ids(self) -> set[str]: ...

    def create_label(self, identifier: str, body: bytes) -> bool: ...

    def delete_label(self, identifier: str) -> bool: ...

    def image(self, bucket: str, key: str) -> bytes: ...


class FolderStore(FolderBucket):
    """A folder laid out as the bucket: `review/*.json`, the images under their keys, `labels/` (listed and read as
    the quality check reads a mirror, modelquality.bucket.FolderBucket)."""

    def _inside(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ImageMissingError(f"key {key!r} points outside {self.root}")
        return path

    def _record_keys(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        return sorted(f"{prefix}{path.name}" for path in folder.glob(f"*{RECORD_SUFFIX}")) if folder.is_dir() else []

    def review_keys(self) -> list[str]:
        return self._record_keys(REVIEW_PREFIX)

    def audit_keys(self) -> list[str]:
        return self._record_keys(AUDIT_PREFIX)

    def label_ids(self) -> set[str]:
        folder = self.root / LABELS_PREFIX
        if not folder.is_dir():
            return set()
        return {identifier for path in folder.iterdir()
                if (identifier := label_id(f"{LABELS_PREFIX}{path.name}")) is not None}

    def create_label(self, identifier: str, body: bytes) -> bool:
        folder = self.root / LABELS_PREFIX
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{identifier}.{uuid.uuid4().hex}.part"
        with temporary.open("wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, folder / f"{identifier}{LABEL_SUFFIX}")  # atomic, and refuses an existing name
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_folder(folder)
        return True

    def delete_label(self, identifier: str) -> bool:
        try:
            (self.root / label_key(identifier)).unlink()
        except FileNotFoundError:
            return False
        _fsync_folder(self.root / LABELS_PREFIX)
        return True

    def image(self, bucket: str, key: str) -> bytes:
        """The mirror holds one bucket: the record's key, under the folder."""
        try:
            return self._inside(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as error:
            raise ImageMissingError(f"{key} is not in {self.root}") from error


def _fsync_folder(folder: Path) -> None:
    """Make a new or removed name in `folder` durable (the file's own fsync does not cover its name)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class S3Store(S3Bucket):
    """The stack's review bucket, listed and read as the quality check reads it (modelquality.bucket.S3Bucket). `s3`
    is a boto3 S3 client."""

    CONFLICT_RETRIES = 5  # 409 ConditionalRequestConflict: another conditional write to the key is in flight

    def check(self) -> None:
        """Fail at start, by name, when the bucket is missing or may not be read. Other AWS errors (expired
        credentials, throttling, no connection) go on as they are: the CLI runner says what to do about them, and
        "give the stack's review bucket" would send the user the wrong way."""
        from botocore.exceptions import ClientError

        try:
            self.s3.list_objects_v2(Bucket=self.bucket, Prefix=REVIEW_PREFIX, MaxKeys=1)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in {"NoSuchBucket", "AccessDenied", "AllAccessDisabled", "404", "403"}:
                raise
            raise ReviewSourceUnavailableError(f"s3://{self.bucket} cannot be read ({code}): give the stack's review "
                                               "bucket (its DataBucketName output)") from error

    def _keys(self, prefix: str) -> Iterator[str]:
        return (item.key for item in self.objects(prefix))

    def review_keys(self) -> list[str]:
        return sorted(key for key in self._keys(REVIEW_PREFIX) if key.endswith(RECORD_SUFFIX))

    def audit_keys(self) -> list[str]:
        return sorted(key for key in self._keys(AUDIT_PREFIX) if key.endswith(RECORD_SUFFIX))

    def label_ids(self) -> set[str]:
        return {identifier for key in self._keys(LABELS_PREFIX) if (identifier := label_id(key)) is not None}

    def create_label(self, identifier: str, body: bytes) -> bool:
        from botocore.exceptions import ClientError

        for attempt in range(self.CONFLICT_RETRIES):
            try:
                self.s3.put_object(Bucket=self.bucket, Key=label_key(identifier), Body=body,
                                   ContentType="application/jsonl", IfNoneMatch="*")
                return True
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == "PreconditionFailed":
                    return False
                if code != "ConditionalRequestConflict":
                    raise
                time.sleep(0.05 * 2**attempt)  # S3 asks the loser of a concurrent conditional write to retry
        return False

    def delete_label(self, identifier: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=label_key(identifier))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code", "") not in {"NoSuchKey", "404"}:
                raise  # a refusal is not "no label"
            return False
        self.s3.delete_object(Bucket=self.bucket, Key=label_key(identifier))
        return True

    def image(self, bucket: str, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            body: bytes = self.s3.get_object(Bucket=bucket or self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise ImageMissingError(f"s3://{bucket or self.bucket}/{key} cannot be read "
                                    f"({error.response.get('Error', {}).get('Code', '')})") from error
        return body


def open_store(source: str, session: Any | None = None) -> Store:
    """`s3://bucket` (read with `session`, a boto3 Session) or a folder that mirrors a bucket, opened as the quality
    check opens one (monitoring.quality.open_bucket); an S3 bucket is checked at once."""
    s3 = session.client("s3") if session is not None and is_s3_uri(source) else None
    store = open_bucket(source, s3, error=ReviewSourceError, folder=FolderStore, bucket=S3Store,
                        reads="the queue is its review/ prefix")
    if isinstance(store, S3Store):
        store.check()
        return store
    assert isinstance(store, FolderStore)  # what open_bucket made of a folder  # noqa: S101
    return store
