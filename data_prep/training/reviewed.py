"""Images people labelled (Ground Truth manifests from the review page) joining a training set.

Where the manifests come from (`train local --labels LABELS`): a manifest file, a folder of them (`*.jsonl`,
`*.manifest`), or an `s3://bucket/prefix` (every manifest object under it, or one object).

Where a line's image comes from (its `source-ref`, `s3://bucket/key`), in this order:
1. `bucket_dir/<key>` when a folder mirroring the bucket is named (`--bucket-dir`);
2. for a manifest read from disk inside a `labels/` folder, `<the folder holding labels/>/<key>`: the
   review page writes `BUCKET/labels/<id>.jsonl`, so `--labels OUT/bucket/labels/` finds its images in
   `OUT/bucket/` (what `python -m workflow run --out OUT` leaves on disk);
3. S3 itself (GetObject with the caller's AWS session).

Every image goes through the one preprocessing (`imaging.preprocess.to_model_input`), and duplicates are
found by **content hash: the SHA-256 of the model input's raw pixels** (`imaging.preprocess.content_hash`, the
identity the review queue, the audits and the report use too). The pixels, not the file bytes, because the same
picture arrives as different files (a phone JPEG and the 32x32 PNG serialize-image made of it, a re-encoded
upload, an EXIF-rotated copy) and what trains the model is its input; the raw pixels rather than a PNG of them,
because a PNG's bytes depend on the Pillow and zlib that wrote it. A dataset's manifest.csv records each image's
`content_hash` beside the file's `sha256` checksum.

A reviewed image already in the training set is not added again (the training set's label stands; a
different human label is counted as a conflict); an image labelled twice keeps its latest label. A blind
audit's label (the review page marks it `"audit": true`) is not trained on: audits are the unbiased sample the
gate judges a candidate on (`data_prep evaluate --audits`), and a model trained on them would be judged on its
own homework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import ClientError
from PIL import Image

from common.artefacts import (
    GroundTruthLabel,
    is_label_manifest,
    is_s3_uri,
    label_manifest_files,
    parse_ground_truth_manifest,
    parse_s3_uri,
)
from data_prep.errors import DataPrepError
from imaging.preprocess import ImageTooLargeError, NotAnImageError, to_model_input
from imaging.preprocess import content_hash as image_content_hash

Log = Callable[[str], None]


class LabelsError(DataPrepError):
    """The labels cannot be used: no manifests where they were looked for, or a manifest that is not one."""


@dataclass(frozen=True)
class Manifest:
    where: str  # a path or an s3:// URI
    labels: list[GroundTruthLabel]
    path: Path | None = None  # for one read from disk


def content_hash(pixels: np.ndarray) -> str:
    """The content hash of a model input's pixels (imaging.preprocess.content_hash; the module docstring says why)."""
    return image_content_hash(Image.fromarray(pixels))


def read_manifests(labels: str | Path, *, s3: Any | None = None) -> list[Manifest]:
    """Every Ground Truth manifest at `labels` (a file, a folder, or s3://bucket/prefix), parsed."""
    if is_s3_uri(str(labels)):
        if s3 is None:
            raise LabelsError(f"{labels}: reading labels from S3 needs an AWS session")
        location = parse_s3_uri(str(labels))
        keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket,
                                                                                      Prefix=location.key)
                for item in page.get("Contents", []) if is_label_manifest(item["Key"])]
        if not keys:
            raise LabelsError(f"no Ground Truth manifests (*.jsonl, *.manifest) under {labels}")
        return [Manifest(f"s3://{location.bucket}/{key}", parse_ground_truth_manifest(
            s3.get_object(Bucket=location.bucket, Key=key)["Body"].read().decode(), f"s3://{location.bucket}/{key}"))
            for key in sorted(keys)]
    files = label_manifest_files(Path(labels))
    if not files:
        raise LabelsError(f"no Ground Truth manifests (*.jsonl, *.manifest) in {labels}")
    return [Manifest(str(path), parse_ground_truth_manifest(path.read_text(), str(path)), path) for path in files]


def mirror_root(manifest: Path) -> Path | None:
    """The folder mirroring a bucket that holds this manifest under `labels/`, if it does."""
    for folder in manifest.resolve().parents:
        if folder.name == "labels":
            return folder.parent
    return None


class ImageReader:
    """A manifest line's image bytes, from a mirror folder or S3 (see the module docstring)."""

    def __init__(self, *, bucket_dir: Path | None = None, s3: Any | None = None) -> None:
        self.bucket_dir = bucket_dir
        self.s3 = s3

    def read(self, source_ref: str, manifest: Manifest) -> bytes:
        if not is_s3_uri(source_ref):
            base = manifest.path.parent if manifest.path else Path(".")
            return (base / source_ref).read_bytes()
        location = parse_s3_uri(source_ref)
        roots = [self.bucket_dir] + ([mirror_root(manifest.path)] if manifest.path else [])
        for root in (r for r in roots if r is not None):
            candidate = (root / location.key).resolve()
            if candidate.is_relative_to(root.resolve()) and candidate.is_file():
                return candidate.read_bytes()
        if self.s3 is None:
            searched = ", ".join(str(root) for root in roots if root is not None) or "no mirror folder"
            raise FileNotFoundError(f"{source_ref} is not in {searched}, and there is no AWS session to read S3")
        try:
            body: bytes = self.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) in {"NoSuchKey", "404", "NoSuchBucket"}:
                raise FileNotFoundError(2, "no such object", source_ref) from error
            raise  # access denied, throttling: AWS refusing is not an unreadable image (the CLI says what it is)
        return body


@dataclass
class Reviewed:
    """The reviewed images kept, and what happened to every line (recorded in the model's metadata)."""

    pixels: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)  # indices into the training class names
    refs: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    manifests: list[dict[str, Any]] = field(default_factory=list)
    duplicates_of_training: int = 0
    conflicts_with_training: int = 0
    relabelled: int = 0  # the same image labelled more than once: the latest label kept
    unknown_class: int = 0
    audits_kept_for_judging: int = 0  # blind audits' labels: never trained on
    unreadable: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {"used": len(self.labels), "manifests": self.manifests,
                "duplicates_of_training": self.duplicates_of_training,
                "conflicts_with_training": self.conflicts_with_training, "relabelled": self.relabelled,
                "unknown_class": self.unknown_class, "audits_kept_for_judging": self.audits_kept_for_judging,
                "unreadable": len(self.unreadable),
                "unreadable_refs": self.unreadable[:20],
                "content_hash": "sha256 of the model input's pixels (imaging.preprocess.content_hash)"}


def select_reviewed(manifests: Sequence[Manifest], class_names: Sequence[str], training_hashes: dict[str, int],
                    reader: ImageReader, *, log: Log | None = None) -> Reviewed:
    """The reviewed images to add to a training set whose images have `training_hashes` (hash -> class index)."""
    warn = log or (lambda message: None)
    chosen: dict[str, tuple[GroundTruthLabel, np.ndarray, int, str]] = {}  # hash -> (label, pixels, index, where)
    result = Reviewed()
    used_by_manifest: dict[str, int] = {}
    for manifest in manifests:
        for label in manifest.labels:
            if label.review.get("audit") is True:
                result.audits_kept_for_judging += 1
                continue
            if label.class_name not in class_names:
                result.unknown_class += 1
                warn(f"warning: {manifest.where}: {label.source_ref} is labelled {label.class_name!r}, not one of "
                     f"{list(class_names)}: not used")
                continue
            try:
                pixels = np.asarray(to_model_input(reader.read(label.source_ref, manifest)), dtype=np.uint8)
            except (OSError, NotAnImageError, ImageTooLargeError) as error:
                result.unreadable.append(label.source_ref)
                warn(f"warning: {manifest.where}: {label.source_ref} cannot be read ({error}): not used")
                continue
            digest = content_hash(pixels)
            index = list(class_names).index(label.class_name)
            if digest in training_hashes:
                result.duplicates_of_training += 1
                result.conflicts_with_training += int(training_hashes[digest] != index)
                continue
            earlier = chosen.get(digest)
            if earlier is not None:
                result.relabelled += 1
                if earlier[0].creation_date > label.creation_date:
                    continue
                used_by_manifest[earlier[3]] -= 1
            chosen[digest] = (label, pixels, index, manifest.where)
            used_by_manifest[manifest.where] = used_by_manifest.get(manifest.where, 0) + 1
    for digest, (label, pixels, index, _) in chosen.items():
        result.pixels.append(pixels)
        result.labels.append(index)
        result.refs.append(label.source_ref)
        result.hashes.append(digest)
    result.manifests = [{"manifest": m.where, "lines": len(m.labels), "used": used_by_manifest.get(m.where, 0)}
                        for m in manifests]
    return result


def hashes_of(images: Iterable[np.ndarray], labels: Iterable[int]) -> dict[str, int]:
    return {content_hash(pixels): int(label) for pixels, label in zip(images, labels, strict=True)}
