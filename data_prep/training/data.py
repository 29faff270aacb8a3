"""Load a training set from data_prep's layout or from a folder of labelled images, as uint8 arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.artefacts import is_dataset, read_dataset_description
from data_prep.dataset.transform import class_indices, folder_examples, model_pixels, scan_folder
from data_prep.errors import DataPrepError
from imaging.preprocess import MODEL_SIDE


class TrainingDataError(DataPrepError):
    """The data folder is neither data_prep's layout nor `<label>/<image>` folders, or holds too little."""


class EvaluationDataError(DataPrepError):
    """The evaluation images cannot be scored by the models: a class they do not know, a missing split."""


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # (N, 32, 32, 3) uint8
    labels: np.ndarray  # (N,) int64 class indices
    names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> ImageSet:
        return ImageSet(self.images[indices], self.labels[indices], [self.names[i] for i in indices])


def _read_lst(folder: Path, lst: Path, remap: dict[int, int]) -> ImageSet:
    """The rows of a .lst file whose class is kept, with class indices renumbered by `remap`."""
    rows = [line.split("\t") for line in lst.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if int(float(row[1])) in remap]
    images = [model_pixels((folder / name).read_bytes()) for _, _, name in rows]
    labels = np.array([remap[int(float(class_index))] for _, class_index, _ in rows], dtype=np.int64)
    pixels = np.stack(images) if images else np.zeros((0, MODEL_SIDE, MODEL_SIDE, 3), np.uint8)
    return ImageSet(pixels, labels, [name for _, _, name in rows])


def load_training_data(data_dir: Path, validation_fraction: float, *, classes: Sequence[str] | None = None,
                       log: Callable[[str], None] | None = None) -> tuple[ImageSet, ImageSet, list[str]]:
    """(train, validation, class names). data_prep's layout keeps its split; a folder is split by path hash.

    `classes` picks and orders the classes as `transform --classes` does (default: all of the
    dataset's, or every non-hidden sub-folder with images); `log` receives warnings about folders
    that are not taken as classes.
    """
    if is_dataset(data_dir):
        built = list(read_dataset_description(data_dir)["class_names"])
        class_names = list(classes) if classes else built
        remap = class_indices(built, class_names)  # the dataset's class index -> the one trained
        train = _read_lst(data_dir / "train", data_dir / "train.lst", remap)
        validation = _read_lst(data_dir / "test", data_dir / "test.lst", remap)
    elif data_dir.is_dir():
        try:
            labelled = scan_folder(data_dir, classes, log=log)
            examples = folder_examples(labelled, None, validation_fraction)
        except DataPrepError as error:
            raise TrainingDataError(f"{data_dir}: {error}") from error
        class_names = labelled.class_names
        sets = {}
        for split in ("train", "test"):
            chosen = [e for e in examples if e.split == split]
            empty = np.zeros((0, MODEL_SIDE, MODEL_SIDE, 3), np.uint8)
            pixels = np.stack([e.pixels for e in chosen]) if chosen else empty
            sets[split] = ImageSet(pixels, np.array([e.class_index for e in chosen], dtype=np.int64),
                                   [e.filename for e in chosen])
        train, validation = sets["train"], sets["test"]
    else:
        raise TrainingDataError(f"{data_dir} does not exist")
    if len(train) < 2 * len(class_names):
        raise TrainingDataError(f"{data_dir}: {len(train)} training images is too few for {len(class_names)} classes")
    untrained = [name for index, name in enumerate(class_names) if not (train.labels == index).any()]
    if untrained:
        raise TrainingDataError(f"{data_dir}: class {untrained[0]!r} has no training images (a model trained "
                                f"without it could never predict it)")
    return train, validation, class_names


def load_evaluation_set(data_dir: Path, class_names: Sequence[str], *, split: str = "test",
                        log: Callable[[str], None] | None = None) -> ImageSet:
    """The images to score models on, labels as indices into `class_names` (the models' order): a data_prep
    dataset's `split`, or every image of a `<label>/<image>` folder. A class the models do not know is refused."""
    if is_dataset(data_dir):
        built = [str(name) for name in read_dataset_description(data_dir)["class_names"]]
        lst = data_dir / f"{split}.lst"
        if not lst.is_file():
            raise EvaluationDataError(f"{data_dir} has no {split!r} split ({lst.name} is missing)")
        unknown = [name for name in built if name not in class_names]
        if unknown:
            raise EvaluationDataError(f"{data_dir} has classes the models do not know: {unknown} (theirs: "
                                      f"{list(class_names)})")
        return _read_lst(data_dir / split, lst, {i: list(class_names).index(name) for i, name in enumerate(built)})
    try:
        labelled = scan_folder(data_dir, None, log=log)
        examples = folder_examples(labelled, None, 0.0)
    except DataPrepError as error:
        raise EvaluationDataError(f"{data_dir}: {error}") from error
    unknown = [name for name in labelled.class_names if name not in class_names]
    if unknown:
        raise EvaluationDataError(f"{data_dir} has classes the models do not know: {unknown} (theirs: "
                                  f"{list(class_names)})")
    remap = [list(class_names).index(name) for name in labelled.class_names]
    pixels = np.stack([e.pixels for e in examples]) if examples else np.zeros((0, MODEL_SIDE, MODEL_SIDE, 3), np.uint8)
    return ImageSet(pixels, np.array([remap[e.class_index] for e in examples], dtype=np.int64),
                    [f"{labelled.class_names[e.class_index]}/{e.filename}" for e in examples])
