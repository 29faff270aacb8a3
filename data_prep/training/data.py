"""Load a training set from data_prep's layout or from a folder of labelled images, as uint8 arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.artefacts import is_dataset, read_dataset_description
from data_prep.dataset.transform import folder_examples, folder_labels, model_pixels
from data_prep.errors import DataPrepError


class TrainingDataError(DataPrepError):
    """The data folder is neither data_prep's layout nor `<label>/<image>` folders, or holds too little."""


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # (N, 32, 32, 3) uint8
    labels: np.ndarray  # (N,) int64 class indices
    names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> ImageSet:
        return ImageSet(self.images[indices], self.labels[indices], [self.names[i] for i in indices])


def _read_lst(folder: Path, lst: Path) -> ImageSet:
    rows = [line.split("\t") for line in lst.read_text().splitlines() if line.strip()]
    images = [model_pixels((folder / name).read_bytes()) for _, _, name in rows]
    labels = np.array([int(float(class_index)) for _, class_index, _ in rows], dtype=np.int64)
    return ImageSet(np.stack(images), labels, [name for _, _, name in rows])


def load_training_data(data_dir: Path, validation_fraction: float) -> tuple[ImageSet, ImageSet, list[str]]:
    """(train, validation, class names). data_prep's layout keeps its split; a folder is split by path hash."""
    if is_dataset(data_dir):
        class_names = list(read_dataset_description(data_dir)["class_names"])
        train = _read_lst(data_dir / "train", data_dir / "train.lst")
        validation = _read_lst(data_dir / "test", data_dir / "test.lst")
    elif data_dir.is_dir():
        class_names = folder_labels(data_dir)
        try:
            examples = folder_examples(data_dir, None, validation_fraction)
        except Exception as error:  # noqa: BLE001 - reported as what the user must fix
            raise TrainingDataError(f"{data_dir}: {error}") from error
        sets = {}
        for split in ("train", "test"):
            chosen = [e for e in examples if e.split == split]
            pixels = np.stack([e.pixels for e in chosen]) if chosen else np.zeros((0, 32, 32, 3), np.uint8)
            sets[split] = ImageSet(pixels, np.array([e.class_index for e in chosen], dtype=np.int64),
                                   [e.filename for e in chosen])
        train, validation = sets["train"], sets["test"]
    else:
        raise TrainingDataError(f"{data_dir} does not exist")
    if len(train) < 2 * len(class_names):
        raise TrainingDataError(f"{data_dir}: {len(train)} training images is too few for {len(class_names)} classes")
    return train, validation, class_names
