"""Transform: CIFAR-100 archive (or a folder of labelled photos) to PNGs, .lst files and a manifest.

Output layout (what `stage` uploads and SageMaker's image-classification channels read):

    <out>/train/<file>.png  <out>/test/<file>.png     32x32 RGB PNGs
    <out>/train.lst         <out>/test.lst            index<TAB>class index<TAB>file (relative to the split folder)
    <out>/manifest.csv                                file,label,class_index,split,sha256
    <out>/dataset.json                                class names in order, counts, source

Labels come from the pickle's fine labels (or the photo's folder), never from file names. Output is
deterministic: the same input gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from common.artefacts import ManifestRow, write_dataset_description, write_manifest
from common.progress import Counter, Progress
from data_prep.dataset.cifar import MEMBER_MD5, CifarSplit, load_label_names, rows_to_images, verify_md5
from data_prep.errors import DataPrepError
from imaging.preprocess import MODEL_SIDE, ImageTooLargeError, NotAnImageError, encode_png, to_model_input

DEFAULT_CLASSES = ("bicycle", "motorcycle")
SPLITS = ("train", "test")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


class UnsafeArchiveError(DataPrepError):
    """The archive has a member that would land outside the target folder, or a link or device."""


class UnknownClassError(DataPrepError):
    """A requested class name is not one of the dataset's labels."""


class DatasetSourceError(DataPrepError):
    """The source is not a CIFAR-100 archive or a folder of `<label>/<image>` files."""


@dataclass(frozen=True)
class Example:
    """One image to write: its pixels (H x W x 3, uint8), file name, split and class index."""

    pixels: np.ndarray
    filename: str
    split: str
    class_index: int


def check_members(members: Iterable[tarfile.TarInfo]) -> None:
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            raise UnsafeArchiveError(f"refusing archive member {member.name!r}: path leaves the target folder")
        if member.issym() or member.islnk():
            raise UnsafeArchiveError(f"refusing archive member {member.name!r}: links are not expected in CIFAR")
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"refusing archive member {member.name!r}: not a regular file")


def safe_extract(archive: Path, target: Path) -> None:
    """Extract after refusing unsafe members by name; filter="data" is the second line of defence."""
    with tarfile.open(archive, "r:*") as tar:
        check_members(tar.getmembers())
        tar.extractall(target, filter="data")


def class_indices(label_names: Sequence[str], wanted: Sequence[str]) -> dict[int, int]:
    """Map dataset label index -> our class index, in the order `wanted` gives."""
    unknown = [name for name in wanted if name not in label_names]
    if unknown:
        raise UnknownClassError(f"unknown class {unknown[0]!r}; valid names: {', '.join(sorted(label_names))}")
    if len(set(wanted)) != len(wanted) or len(wanted) < 2:
        raise UnknownClassError(f"give at least two distinct class names, got {list(wanted)}")
    return {label_names.index(name): position for position, name in enumerate(wanted)}


def cifar_examples(extracted: Path, classes: Sequence[str],
                   member_md5: dict[str, str] | None = MEMBER_MD5) -> list[Example]:
    """Verify the members' checksums, then select the wanted classes from both splits."""
    root = extracted / "cifar-100-python"
    for member, expected in (member_md5 or {}).items():
        verify_md5(extracted / member, expected)
    mapping = class_indices(load_label_names(root / "meta"), classes)
    examples = []
    for split in SPLITS:
        data = CifarSplit.load(root / split)
        keep = np.flatnonzero(np.isin(data.fine_labels, list(mapping)))
        images = rows_to_images(data.data[keep])
        for pixels, row in zip(images, keep, strict=True):
            examples.append(Example(pixels, data.filenames[row], split, mapping[int(data.fine_labels[row])]))
    return examples


def model_pixels(data: bytes) -> np.ndarray:
    """A photo's bytes as the model sees them: the one preprocessing, also used by serialize-image."""
    return np.asarray(to_model_input(data), dtype=np.uint8)


def _is_test(relative_path: str, test_fraction: float) -> bool:
    """Stable hold-out: the same file always lands in the same split, whatever else is in the folder."""
    bucket = int.from_bytes(hashlib.sha256(relative_path.encode()).digest()[:4], "big") / 2**32
    return bucket < test_fraction


def folder_labels(folder: Path) -> list[str]:
    """The label sub-folders of an image folder, in name order (their order is the class index order)."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def folder_examples(folder: Path, classes: Sequence[str] | None, test_fraction: float) -> list[Example]:
    """Images under `<folder>/<label>/`; classes default to the sub-folders in name order."""
    labels = folder_labels(folder)
    if len(labels) < 2:
        raise DatasetSourceError(f"{folder} must hold one sub-folder per label (at least two), found {labels}")
    wanted = list(classes) if classes else labels
    mapping = class_indices(labels, wanted)
    examples, used_names = [], set()
    for label_position, label in enumerate(labels):
        if label_position not in mapping:
            continue
        for path in sorted(p for p in (folder / label).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                pixels = model_pixels(path.read_bytes())
            except (NotAnImageError, ImageTooLargeError) as error:
                raise DatasetSourceError(f"{path} is not a readable image: {error}") from error
            relative = f"{label}/{path.name}"
            name = f"{path.stem}.png"
            if name in used_names:
                name = f"{path.stem}-{hashlib.sha256(relative.encode()).hexdigest()[:8]}.png"
            used_names.add(name)
            split = "test" if _is_test(relative, test_fraction) else "train"
            examples.append(Example(pixels, name, split, mapping[label_position]))
    return examples


def write_dataset(examples: Sequence[Example], classes: Sequence[str], out: Path, source: str,
                  progress: Progress | None = None, workers: int = 4) -> dict[str, object]:
    """Write PNGs, .lst files, manifest.csv and dataset.json; return the dataset description."""
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
    written = Counter(progress, len(examples))

    def encode_and_write(example: Example) -> str:
        data = encode_png(Image.fromarray(example.pixels))
        (out / example.split / example.filename).write_bytes(data)
        written.advance()
        return hashlib.sha256(data).hexdigest()

    with ThreadPoolExecutor(max_workers=workers) as pool:  # zlib releases the GIL
        digests = list(pool.map(encode_and_write, examples))

    write_manifest(out, [ManifestRow(f"{example.split}/{example.filename}", classes[example.class_index],
                                     example.class_index, example.split, digest)
                         for example, digest in zip(examples, digests, strict=True)])
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        rows = [e for e in examples if e.split == split]
        lines = [f"{index}\t{e.class_index}\t{e.filename}\n" for index, e in enumerate(rows)]
        (out / f"{split}.lst").write_text("".join(lines))
        counts[split] = {name: sum(e.class_index == i for e in rows) for i, name in enumerate(classes)}
    description: dict[str, object] = {"class_names": list(classes), "counts": counts, "source": source,
                                      "image_shape": [3, MODEL_SIDE, MODEL_SIDE]}
    write_dataset_description(out, description)
    return description
