"""Builds small archives in CIFAR-100's exact python format, so no test needs the real 160 MB download."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

FINE_LABELS = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle "
    "caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant "
    "flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man "
    "maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree "
    "plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
    "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor "
    "train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()
assert len(FINE_LABELS) == 100 and FINE_LABELS.index("bicycle") == 8 and FINE_LABELS.index("motorcycle") == 48


def split_pickle(labels: list[int], seed: int, prefix: str) -> bytes:
    rng = np.random.default_rng(seed)
    names = [f"{FINE_LABELS[label]}_s_{prefix}{i:05d}.png".encode() for i, label in enumerate(labels)]
    batch = {
        b"filenames": names,
        b"batch_label": b"training batch 1 of 1",
        b"fine_labels": labels,
        b"coarse_labels": [label // 5 for label in labels],
        b"data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8),
    }
    return pickle.dumps(batch, protocol=2)


def make_cifar_archive(path: Path, *, per_class: int = 3, test_per_class: int = 1, seed: int = 0) -> dict[str, str]:
    """Write a .tar.gz with train (per_class rows of every label), test (test_per_class per label) and meta.

    Returns the members' MD5s, to pass where the real archive's published ones would go.
    """
    train_labels = [label for label in range(100) for _ in range(per_class)]
    test_labels = [label for label in range(100) for _ in range(test_per_class)]
    members = {
        "cifar-100-python/train": split_pickle(train_labels, seed, "tr"),
        "cifar-100-python/test": split_pickle(test_labels, seed + 1, "te"),
        "cifar-100-python/meta": pickle.dumps({
            b"fine_label_names": [n.encode() for n in FINE_LABELS],
            b"coarse_label_names": [f"coarse_{i}".encode() for i in range(20)],
        }, protocol=2),
    }
    write_tar(path, members)
    return {name: hashlib.md5(data, usedforsecurity=False).hexdigest() for name, data in members.items()}


def write_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
