"""Transform: CIFAR-100 archive (or a folder of labelled photos) to PNGs, .lst files and a manifest.

Output layout (what `stage` uploads and SageMaker's image-classification channels read):

    <out>/train/<file>.png  <out>/test/<file>.png     32x32 RGB PNGs
    <out>/train.lst         <out>/test.lst            index<TAB>class index<TAB>file (relative to the split folder)
    <out>/manifest.csv                                file,label,class_index,split,sha256,content_hash
    <out>/dataset.json                                class names in order, counts, source

Labels come from the pickle's fine labels (or the photo's folder), never from file names. Output is
deterministic: the same input gives byte-identical files.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from common.artefacts import ManifestRow, write_dataset_description, write_manifest
from common.progress import Counter, Progress
from common.stats import stable_fraction
from data_prep.dataset import cifar
from data_prep.dataset.cifar import MEMBER_MD5, CifarSplit, load_label_names, rows_to_images, verify_md5
from data_prep.errors import DataPrepError
from imaging.preprocess import (
    MODEL_SIDE,
    ImageTooLargeError,
    NotAnImageError,
    content_hash,
    encode_png,
    to_model_input,
)

Log = Callable[[str], None]
SPLITS = ("train", "test")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
CIFAR_MEMBERS = tuple(MEMBER_MD5)  # cifar-100-python/train, test, meta
COMPRESSION_MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}
# Folders that are never a label: macOS archive resource forks, and hidden folders (.git, .ipynb_checkpoints...).
IGNORED_FOLDERS = {"__MACOSX"}


class UnsafeArchiveError(DataPrepError):
    """The archive has a member that would land outside the target folder, or a link or device."""


class UnknownClassError(DataPrepError):
    """A requested class name is not one of the dataset's labels."""


class DatasetSourceError(DataPrepError):
    """The source is not a CIFAR-100 archive or a folder of `<label>/<image>` files."""


class NotAnArchiveError(DatasetSourceError):
    """The source file is not a (compressed) tar archive at all."""


class CorruptArchiveError(DatasetSourceError):
    """The source is a gzip/bzip2/xz or tar file that is damaged or cut short."""


class NotCifarArchiveError(DatasetSourceError):
    """The archive reads, but lacks CIFAR-100's members (cifar-100-python/train, test, meta)."""


class EmptyClassError(DatasetSourceError):
    """A class asked for by name has a folder with no images in it."""


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


def _compression(archive: Path) -> str | None:
    """The compression the file's first bytes announce (gzip, bzip2, xz), or None."""
    with archive.open("rb") as handle:
        head = handle.read(6)
    return next((name for name, magic in COMPRESSION_MAGIC.items() if head.startswith(magic)), None)


def _decompresses(archive: Path, compression: str) -> str | None:
    """None when the whole compressed stream decodes (CRC included), else what is wrong with it."""
    openers: dict[str, Callable[..., Any]] = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
    try:
        with openers[compression](archive, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as error:
        return str(error) or type(error).__name__
    return None


def _archive_error(archive: Path, error: BaseException) -> DataPrepError:
    """Name what is wrong with a file tarfile could not read: not an archive at all, or a damaged one."""
    compression = _compression(archive)
    if compression is not None:
        damage = _decompresses(archive, compression)
        if damage is not None:
            return CorruptArchiveError(f"{archive} is a damaged or truncated {compression} file ({damage}); "
                                       f"download it again")
        return NotAnArchiveError(f"{archive} is a {compression} file but holds no tar archive; CIFAR-100 is "
                                 f"{cifar.ARCHIVE_NAME}")
    if archive.stat().st_size >= 512 and _looks_like_tar(archive):
        return CorruptArchiveError(f"{archive} is a damaged or truncated tar archive ({error})")
    return NotAnArchiveError(f"{archive} is not a tar archive (CIFAR-100 is {cifar.ARCHIVE_NAME}) nor a folder of "
                             f"<label>/<image> files")


def _looks_like_tar(archive: Path) -> bool:
    with archive.open("rb") as handle:
        header = handle.read(512)
    return header[257:262] == b"ustar"


def archive_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """Every member (reading the whole archive, so truncation shows here), refusing unsafe ones by name."""
    try:
        members = tar.getmembers()
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as error:
        raise _archive_error(archive, error) from error
    check_members(members)
    return members


def safe_extract(archive: Path, target: Path, required: Sequence[str] = CIFAR_MEMBERS) -> None:
    """Extract after refusing unsafe members by name; filter="data" is the second line of defence.

    A file that is not an archive, a damaged or truncated one, and an archive without the
    `required` members are each refused by name before anything is written.
    """
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as error:
        raise _archive_error(archive, error) from error
    with tar:
        members = archive_members(tar, archive)
        names = {member.name for member in members if member.isfile()}
        missing = [name for name in required if name not in names]
        if missing:
            found = ", ".join(sorted(names)[:5]) or "no files"
            raise NotCifarArchiveError(f"{archive} is not CIFAR-100 (python version): it has no "
                                       f"{', '.join(missing)} (found {found})")
        try:
            tar.extractall(target, members=members, filter="data")
        except (tarfile.ReadError, EOFError, zlib.error, lzma.LZMAError) as error:
            raise _archive_error(archive, error) from error


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
    return stable_fraction(relative_path, 4) < test_fraction


def _hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name in IGNORED_FOLDERS


def _images_in(folder: Path) -> list[Path]:
    """The image files directly in a label folder, in name order; hidden files (macOS `._x.jpg`) are not images."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not _hidden(p) and p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass(frozen=True)
class LabelledFolder:
    """A `<label>/<image>` folder resolved to classes: their names in class index order, and their images."""

    root: Path
    images: dict[str, list[Path]]

    @property
    def class_names(self) -> list[str]:
        return list(self.images)


def scan_folder(folder: Path, classes: Sequence[str] | None = None, *, log: Log | None = None) -> LabelledFolder:
    """The one reading of a labelled image folder, for `transform --source` and `train local --data-dir`.

    Each sub-folder is a label, except hidden ones (`.git`, `__MACOSX`), which are skipped with a
    warning through `log`. Without `classes`, the labels are the sub-folders that hold images, in
    name order; an empty one is skipped with a warning (an empty class would train a model that can
    never predict it). With `classes`, exactly those labels in that order: an unknown name or a
    class with no images is refused by name.
    """
    warn = log or (lambda message: None)
    if not folder.is_dir():
        raise DatasetSourceError(f"{folder} is not a folder of <label>/<image> files")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    for hidden in (p for p in subfolders if _hidden(p)):
        warn(f"warning: ignoring {hidden}: hidden folders are not labels")
    labels = {p.name: _images_in(p) for p in subfolders if not _hidden(p)}
    if classes:
        class_indices(list(labels), list(classes))  # unknown or repeated names, named with the valid ones
        empty = [name for name in classes if not labels[name]]
        if empty:
            raise EmptyClassError(f"class {empty[0]!r} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in "
                                  f"{folder / empty[0]}")
        chosen = {name: labels[name] for name in classes}
    else:
        for name in (name for name, images in labels.items() if not images):
            warn(f"warning: ignoring {folder / name}: no images in it")
        chosen = {name: images for name, images in labels.items() if images}
    if len(chosen) < 2:
        raise DatasetSourceError(f"{folder} must hold one sub-folder per label (at least two, each with images), "
                                 f"found {sorted(chosen) or 'none'}")
    return LabelledFolder(folder, chosen)


def folder_labels(folder: Path, classes: Sequence[str] | None = None, *, log: Log | None = None) -> list[str]:
    """The class names of an image folder, in class index order (see scan_folder)."""
    return scan_folder(folder, classes, log=log).class_names


def folder_examples(folder: Path | LabelledFolder, classes: Sequence[str] | None, test_fraction: float, *,
                    log: Log | None = None) -> list[Example]:
    """Images under `<folder>/<label>/` (see scan_folder), each given a split that is stable by path."""
    labelled = folder if isinstance(folder, LabelledFolder) else scan_folder(folder, classes, log=log)
    examples, used_names = [], set()
    for class_index, (label, paths) in enumerate(labelled.images.items()):
        for path in paths:
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
            examples.append(Example(pixels, name, split, class_index))
    return examples


def write_dataset(examples: Sequence[Example], classes: Sequence[str], out: Path, source: str,
                  progress: Progress | None = None, workers: int = 4) -> dict[str, object]:
    """Write PNGs, .lst files, manifest.csv and dataset.json; return the dataset description."""
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
    written = Counter(progress, len(examples))

    def encode_and_write(example: Example) -> tuple[str, str]:
        image = Image.fromarray(example.pixels)
        data = encode_png(image)
        (out / example.split / example.filename).write_bytes(data)
        written.advance()
        return hashlib.sha256(data).hexdigest(), content_hash(image)

    with ThreadPoolExecutor(max_workers=workers) as pool:  # zlib releases the GIL
        digests = list(pool.map(encode_and_write, examples))

    write_manifest(out, [ManifestRow(f"{example.split}/{example.filename}", classes[example.class_index],
                                     example.class_index, example.split, file_digest, identity)
                         for example, (file_digest, identity) in zip(examples, digests, strict=True)])
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
