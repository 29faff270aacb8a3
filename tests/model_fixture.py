"""A tiny trained model, built once per session: enough to exercise training, export and serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import settings
from data_prep.training.local import train_local
from data_prep.training.train import TrainConfig
from testkit.images import labelled_folder

TINY = TrainConfig(members=2, epochs=3, batch_size=8, threads=1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-model")
    data = labelled_folder(root / "images", classes=settings.class_names())  # served as the stack would serve it
    model_dir = root / "model"
    train_local(data, model_dir, TINY, validation_fraction=0.25)
    return model_dir
