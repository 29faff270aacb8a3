"""The files that pass between steps, read and written in one place, and `s3://` locations.

Dataset folder (written by `data_prep transform`, read by training, the offline run and monitoring):
    manifest.csv   file,label,class_index,split,sha256,content_hash: where a true label is found (never in a file
                   name); sha256 is the PNG file's checksum, content_hash the image's identity (its pixels:
                   imaging.preprocess.content_hash), the key labels and decisions are joined by
    dataset.json   class names in order, counts per split, source, image shape
Model folder (written by `data_prep train local`, read by the endpoint, monitoring and the gate):
    metadata.json  class names, input contract, normalisation, temperature, training config, metrics
    baseline.json  the training-time distributions the drift check compares traffic with
Labels (written by the review page `python -m review serve`, read by `data_prep train local --labels`):
    labels/*.jsonl SageMaker Ground Truth's image-classification output lines, one per reviewed image
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.errors import InputError
from common.hints import hint
from modelquality.errors import LabelFormatError
from modelquality.groundtruth import (  # noqa: F401 - re-exported: the project reads labels through this module
    GROUND_TRUTH_TYPE,
    LABEL_ATTRIBUTE,
    LABEL_MANIFEST_SUFFIXES,
    REVIEW_JOB_NAME,
    GroundTruthLabel,
    ground_truth_now,
    is_label_manifest,
)
from modelquality.groundtruth import parse_ground_truth_line as _parse_ground_truth_line

MANIFEST_FILE = "manifest.csv"
DATASET_FILE = "dataset.json"
METADATA_FILE = "metadata.json"
BASELINE_FILE = "baseline.json"
MANIFEST_COLUMNS = ("file", "label", "class_index", "split", "sha256", "content_hash")


class ArtefactError(InputError):
    """A dataset or model folder is missing a file it must have, or the file is not what it should be."""


@dataclass(frozen=True)
class ManifestRow:
    file: str  # split/file name, relative to the dataset folder (and to its S3 prefix once staged)
    label: str
    class_index: int
    split: str
    sha256: str  # of the file's bytes: its checksum, not the image's identity (a re-encoding changes it)
    content_hash: str | None = None  # the image's identity (imaging.preprocess.content_hash); None in older manifests


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ArtefactError(f"{path} does not exist: {what}")
    return path


def require_folder(path: Path, what: str) -> Path:
    """`path` when it is a folder, else ArtefactError saying what to do (`what`)."""
    if not path.is_dir():
        raise ArtefactError(f"{path} {'is not a folder' if path.exists() else 'does not exist'}: {what}")
    return path


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(_require(path, what).read_text())
    except json.JSONDecodeError as error:
        raise ArtefactError(f"{path} is not valid JSON ({error}): {what}") from error


def write_json(path: Path, data: Any, *, indent: int | None = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent) + "\n")
    return path


# Dataset -------------------------------------------------------------------------------------------------

def write_manifest(dataset: Path, rows: Iterable[ManifestRow]) -> Path:
    path = dataset / MANIFEST_FILE
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for row in rows:
            writer.writerow([row.file, row.label, row.class_index, row.split, row.sha256, row.content_hash or ""])
    return path


def parse_manifest(text: str) -> dict[str, ManifestRow]:
    """manifest.csv text keyed by `split/file` (the key a staged image has under the dataset prefix)."""
    rows = {}
    for record in csv.DictReader(io.StringIO(text)):
        row = ManifestRow(record["file"], record["label"], int(record["class_index"]), record["split"],
                          record["sha256"], record.get("content_hash") or None)
        rows[row.file] = row
    return rows


def read_manifest(dataset: Path) -> dict[str, ManifestRow]:
    return parse_manifest(_require(dataset / MANIFEST_FILE, f"build the dataset with `{hint('data_prep transform')}`")
                          .read_text())


def held_out_labels(dataset: Path) -> dict[str, str]:
    """True label of each test image, keyed `test/<file>` as the image is staged in the bucket."""
    return {file: row.label for file, row in read_manifest(dataset).items() if row.split == "test"}


def write_dataset_description(dataset: Path, description: dict[str, Any]) -> Path:
    return write_json(dataset / DATASET_FILE, description)


def parse_dataset_description(text: str) -> dict[str, Any]:
    description: dict[str, Any] = json.loads(text)
    return description


def read_dataset_description(dataset: Path) -> dict[str, Any]:
    description: dict[str, Any] = _load_json(dataset / DATASET_FILE,
                                             f"build the dataset with `{hint('data_prep transform')}`")
    return description


def is_dataset(folder: Path) -> bool:
    return (folder / DATASET_FILE).is_file()


# Model ---------------------------------------------------------------------------------------------------

def write_model_metadata(model_dir: Path, metadata: dict[str, Any]) -> Path:
    return write_json(model_dir / METADATA_FILE, metadata)


def read_model_metadata(model_dir: Path) -> dict[str, Any]:
    metadata: dict[str, Any] = _load_json(model_dir / METADATA_FILE,
                                          f"train a model with `{hint('data_prep train local')}`")
    return metadata


def model_class_names(model_dir: Path) -> list[str]:
    return [str(name) for name in read_model_metadata(model_dir)["class_names"]]


def check_model_dir(model_dir: Path) -> dict[str, Any]:
    """The model's metadata, after checking every file the endpoint and monitoring need is there (and that the
    metadata names the classes and the model file: a hand-edited or cut-short metadata.json says so here)."""
    metadata = read_model_metadata(model_dir)
    classes = metadata.get("class_names") if isinstance(metadata, dict) else None
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) and c for c in classes)):
        raise ArtefactError(f"{model_dir / METADATA_FILE} names no class list (\"class_names\": two or more names): "
                            "the model folder is incomplete: train again")
    metadata.setdefault("model_file", "model.onnx")
    _require(model_dir / str(metadata["model_file"]), "the model folder is incomplete: train again")
    _require(model_dir / BASELINE_FILE, "the model folder is incomplete: train again")
    return metadata


def previous_model_dir(model_dir: Path) -> Path:
    """Where the model a new one replaced is kept: `<dir>.previous` beside it (Layout.previous_model for out/model)."""
    return model_dir.with_name(f"{model_dir.name}.previous")


def staging_model_dir(model_dir: Path) -> Path:
    """A hidden folder beside `model_dir` (same file system: installing it is a rename) where a new model is made."""
    return model_dir.with_name(f".{model_dir.name}.staging")


def holds_more_than(folder: Path, names: Iterable[str] = ()) -> bool:
    """`folder` exists and holds an entry other than `names`."""
    return folder.is_dir() and any(entry.name not in set(names) for entry in folder.iterdir())


@dataclass(frozen=True)
class KeptModel:
    """Where install_model kept what the model folder held, and whether an older model kept there had to go: one
    previous model is kept (`<dir>.previous`), not a growing pile of them, and a user is told when one is dropped."""

    path: Path
    replaced_older: bool

    def sentence(self, model_dir: Path) -> str:
        older = ", replacing the older model kept there (only the last one is kept)" if self.replaced_older else ""
        return f"the model {model_dir} held is kept in {self.path}{older}"


def install_model(staged: Path, model_dir: Path, *, carry: Iterable[str] = ()) -> KeptModel | None:
    """Make `staged` (a whole model, beside `model_dir`: staging_model_dir) the folder `model_dir`; whatever
    `model_dir` held is kept in `<dir>.previous`. One previous model is kept: an older one already there is deleted
    to make room, and the KeptModel returned says so (`replaced_older`), for the caller's one line. Two renames, so
    `model_dir` is always a whole model, the old or the new. `carry`: files of `model_dir` that belong to the new
    model (the log its training is writing), moved into it first. An empty `model_dir` (or one holding only `carry`)
    is kept as the folder it is and filled. Returns where the old model is kept, or None when there was nothing
    else to keep. Training (`data_prep train local`) and the loop's promotion both install this way."""
    carried = list(carry)
    for name in carried:
        if (model_dir / name).is_file():
            shutil.move(model_dir / name, staged / name)
    if not holds_more_than(model_dir):
        model_dir.mkdir(parents=True, exist_ok=True)
        for entry in staged.iterdir():
            shutil.move(entry, model_dir / entry.name)
        staged.rmdir()
        return None
    kept = previous_model_dir(model_dir)
    older = kept.exists()
    shutil.rmtree(kept, ignore_errors=True)
    shutil.move(model_dir, kept)  # a rename (same file system: staging_model_dir is beside it)
    shutil.move(staged, model_dir)
    return KeptModel(kept, older)


def write_baseline(model_dir: Path, baseline: dict[str, Any]) -> Path:
    return write_json(model_dir / BASELINE_FILE, baseline, indent=None)


def read_baseline(path: Path) -> dict[str, Any]:
    baseline: dict[str, Any] = _load_json(path,
                                          f"it is written next to the model by `{hint('data_prep train local')}`")
    return baseline


def read_gate_verdict(path: Path) -> dict[str, Any]:
    """The gate's table (`data_prep evaluate --out`, or the loop's `gate.json`), checked to carry a verdict."""
    what = f"write it with `{hint('data_prep evaluate')} ... --out FILE` (the loop writes out/loop/gate.json)"
    table = _load_json(path, what)
    if not isinstance(table, dict) or table.get("verdict") not in {"promote", "hold"}:
        raise ArtefactError(f"{path} holds no gate verdict (\"verdict\": \"promote\" or \"hold\"): {what}")
    return table


# S3 locations --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str  # a key or a prefix; may be empty

    def join(self, *parts: str) -> S3Location:
        """This location with `parts` appended as path segments."""
        key = "/".join(part.strip("/") for part in (self.key, *parts) if part.strip("/"))
        return S3Location(self.bucket, key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def is_s3_uri(text: str | Path) -> bool:
    return str(text).startswith("s3://")


def parse_s3_uri(uri: str) -> S3Location:
    """`s3://bucket/key/or/prefix` to its bucket and key; anything else is refused by name."""
    if not is_s3_uri(uri):
        raise InputError(f"{uri!r} is not an s3:// URI (expected s3://bucket/prefix)")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise InputError(f"{uri!r} names no bucket (expected s3://bucket/prefix)")
    return S3Location(bucket, key)


# Ground Truth labels: the line format and its parser live in the ModelQualityLayer's package (modelquality.
# groundtruth), which the CheckQualityFunction imports too; here they raise ArtefactError, the project's input error.


def parse_ground_truth_line(text: str, where: str = "manifest") -> GroundTruthLabel:
    """One image-classification line (modelquality.groundtruth.parse_ground_truth_line); ArtefactError names a bad
    one."""
    try:
        return _parse_ground_truth_line(text, where)
    except LabelFormatError as error:
        raise ArtefactError(str(error)) from error


def parse_ground_truth_manifest(text: str, where: str = "manifest") -> list[GroundTruthLabel]:
    """Every non-blank line of a JSON Lines manifest; a bad line is refused naming `where` and its number."""
    return [parse_ground_truth_line(line, f"{where}:{number}")
            for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def ground_truth_manifest(labels: Iterable[GroundTruthLabel]) -> str:
    return "".join(label.as_line() + "\n" for label in labels)


def write_ground_truth_manifest(path: Path, labels: Iterable[GroundTruthLabel]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ground_truth_manifest(labels))
    return path


def visible_files(folder: Path) -> list[Path]:
    """Every file under `folder`, sorted, leaving out hidden ones and those in hidden folders (`.DS_Store`,
    `.git/`: what a person copying a folder did not mean to hand over)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def label_manifest_files(path: Path) -> list[Path]:
    """A manifest file, or every `*.jsonl` / `*.manifest` under a folder (hidden files skipped), sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ArtefactError(f"{path} does not exist: give a Ground Truth manifest, a folder of them or s3://...")
    return [p for p in visible_files(path) if is_label_manifest(p.name)]


def dataset_ground_truth(dataset: Path, split: str, bucket: str, prefix: str = "") -> list[GroundTruthLabel]:
    """A split's true labels (manifest.csv) as Ground Truth lines for the images staged at s3://bucket/prefix/:
    what reviewers who got every label right would have written (the offline loop's demo labels)."""
    rows = [row for row in read_manifest(dataset).values() if row.split == split]
    if not rows:
        raise ArtefactError(f"{dataset / MANIFEST_FILE} has no {split!r} images")
    stamp = ground_truth_now()
    location = S3Location(bucket, prefix)
    return [GroundTruthLabel(location.join(row.file).uri, row.label, row.class_index, stamp,
                             job_name="labeling-job/dataset-manifest")
            for row in sorted(rows, key=lambda row: row.file)]
