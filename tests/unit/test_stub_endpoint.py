"""The stand-in endpoint's default answer is confident for the template's classes and threshold, whatever they are:
raising ConfidenceThreshold must not turn `make demo`'s confident answers into reviews."""

from __future__ import annotations

import json

import pytest

from common import settings
from workflow.offline.stub_endpoint import Answer, confident_body


@pytest.mark.parametrize(("threshold", "classes", "body"), [
    ("0.93", "bicycle,motorcycle", [0.97, 0.03]),
    ("0.98", "bicycle,motorcycle", [0.98, 0.02]),
    ("1", "bicycle,motorcycle,tractor", [1.0, 0.0, 0.0]),
    ("0.5", "bicycle,motorcycle,tractor", [0.97, 0.015, 0.015]),
])
def test_the_default_answer_passes_the_template_threshold(monkeypatch, threshold, classes, body):
    defaults = {**settings.template_parameter_defaults(), "ConfidenceThreshold": threshold, "ClassNames": classes}
    monkeypatch.setattr(settings, "template_parameter_defaults", lambda *args: defaults)
    assert json.loads(confident_body()) == body
    assert json.loads(Answer().body) == body
    assert max(body) >= float(threshold)
