"""The model benchmark's folds and variants: what its published numbers rest on."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from bench.model_quality import class_balanced_folds, config_override


def test_folds_cover_every_image_once_with_the_classes_balanced():
    labels = np.array([0] * 500 + [1] * 500)
    folds = class_balanced_folds(labels, 5)
    assert sorted(np.unique(folds).tolist()) == [0, 1, 2, 3, 4]
    for fold in range(5):
        assert np.bincount(labels[folds == fold]).tolist() == [100, 100]


def test_folds_do_not_depend_on_the_training_seed_or_call_order():
    labels = np.array([0, 1] * 50 + [1] * 7)
    first = class_balanced_folds(labels, 5)
    np.random.seed(123)  # a caller's global state must not move the folds
    np.testing.assert_array_equal(class_balanced_folds(labels, 5), first)
    assert np.bincount(first).max() - np.bincount(first).min() <= 2


@pytest.mark.parametrize(("text", "expected"), [
    ("distill=0", ("distill", 0.0)),
    ("epochs=3", ("epochs", 3)),
    ("widths=8,16", ("widths", (8, 16))),
    ("serve_ensemble=true", ("serve_ensemble", True)),
    ("kfold=0", ("kfold", False)),
])
def test_variants_are_parsed_as_the_field_is_typed(text, expected):
    assert config_override(text) == expected


@pytest.mark.parametrize("text", ["nope=1", "epochs", "epochs="])
def test_unknown_or_empty_fields_are_refused_by_name(text):
    with pytest.raises(argparse.ArgumentTypeError, match=text):
        config_override(text)
