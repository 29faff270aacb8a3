"""`workflow run --model-dir` checks, before any long step, that the model's classes are the template's ClassNames:
classify-image names each answer by them, so a model of other classes would fail (or, same count, mislabel) every
image."""

from __future__ import annotations

import json
import shutil

import pytest

from common import settings
from common.artefacts import ArtefactError
from workflow.offline_run import WorkflowOptions, check_inputs


def model_with_classes(tiny_model, folder, classes):
    shutil.copytree(tiny_model, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps({**metadata, "class_names": classes}))
    return folder


def test_a_model_of_the_templates_classes_is_accepted(tiny_model, tmp_path):
    check_inputs(WorkflowOptions(out=tmp_path / "out", model_dir=tiny_model))


@pytest.mark.parametrize("classes", [
    lambda names: list(reversed(names)),  # the same classes in another order: every label would be wrong
    lambda names: [*names, "tractor"],
])
def test_a_model_of_other_classes_is_refused_naming_both_lists(tiny_model, tmp_path, classes):
    other = classes(settings.class_names())
    model = model_with_classes(tiny_model, tmp_path / "model", other)
    with pytest.raises(ArtefactError) as refused:
        check_inputs(WorkflowOptions(out=tmp_path / "out", model_dir=model))
    assert str(refused.value) == (
        f"the model in {model} was trained on {', '.join(other)}, but template.yaml's ClassNames are "
        f"{', '.join(settings.class_names())}: set ClassNames to the model's classes in their order, or train on "
        "those classes")
