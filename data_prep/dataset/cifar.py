"""CIFAR-100 (python version): where it lives, its checksums, and a safe reader for its pickles."""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.errors import DataPrepError

ARCHIVE_NAME = "cifar-100-python.tar.gz"
# The brief's URL first; the host has been reported moved, so the new one is tried next.
MIRRORS = (
    "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "https://cave.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
)
ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
MEMBER_MD5 = {
    "cifar-100-python/train": "16019d7e3df5f24257cddd939b257f8d",
    "cifar-100-python/test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    "cifar-100-python/meta": "7973b15100ade9c7d40fb424638fde48",
}
IMAGE_SIDE = 32


class ChecksumError(DataPrepError):
    """A file's MD5 is not the published one: it is truncated, corrupted or not CIFAR-100."""


class UnsafePickleError(DataPrepError):
    """A pickle asked for something other than plain data and numpy arrays."""


def md5_of(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str | None) -> None:
    if expected is None:
        return
    actual = md5_of(path)
    if actual != expected:
        raise ChecksumError(f"{path}: MD5 {actual}, expected {expected}")


class _DataOnlyUnpickler(pickle.Unpickler):
    """Pickle runs code; CIFAR's pickles need only numpy's array reconstruction, so allow nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickleError(f"refusing to load {module}.{name} from a dataset pickle")


def load_pickle(path: Path) -> dict[bytes, Any]:
    with path.open("rb") as handle:
        data: dict[bytes, Any] = _DataOnlyUnpickler(io.BufferedReader(handle), encoding="bytes").load()
    return data


@dataclass(frozen=True)
class CifarSplit:
    """One split: rows of 3,072 bytes (1,024 red, 1,024 green, 1,024 blue), fine labels, file names."""

    data: np.ndarray
    fine_labels: np.ndarray
    filenames: list[str]

    @classmethod
    def load(cls, path: Path) -> CifarSplit:
        raw = load_pickle(path)
        data = np.asarray(raw[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * IMAGE_SIDE * IMAGE_SIDE:
            raise ValueError(f"{path}: data has shape {data.shape}, expected (N, 3072)")
        return cls(
            data=data,
            fine_labels=np.asarray(raw[b"fine_labels"], dtype=np.int64),
            filenames=[name.decode() for name in raw[b"filenames"]],
        )


def load_label_names(meta_path: Path) -> list[str]:
    return [name.decode() for name in load_pickle(meta_path)[b"fine_label_names"]]


def rows_to_images(rows: np.ndarray) -> np.ndarray:
    """(N, 3072) channel-planar rows to (N, 32, 32, 3) RGB images, without a Python loop."""
    return rows.reshape(-1, 3, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 3, 1)
