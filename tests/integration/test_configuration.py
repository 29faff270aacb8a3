"""Template parameters and function environment reach the handlers, and bad values fail by name."""

from __future__ import annotations

import pytest

from common.settings import staged_dataset_key
from common.template import SamTemplate, TemplateError
from testkit.images import png_bytes
from tests.support import REPO_ROOT, SCRIPTED_STACK, TWO_CLASSES
from workflow.offline.runtime import OfflineRuntime
from workflow.offline.stub_endpoint import Answer

KEY = staged_dataset_key("test/bicycle_s_000513.png")  # where serialize-image may read it


def test_bad_threshold_configuration_fails_every_execution_by_name(endpoint, lambda_logs):
    overrides = {"FilterLowConfidenceFunction": {"THRESHOLD": "1.5"}}
    with OfflineRuntime(endpoint.url, environment_overrides=overrides, bucket="threshold-test",
                        lambda_log_dir=lambda_logs, parameter_overrides=SCRIPTED_STACK) as offline:
        offline.put_image(KEY, png_bytes())
        result = offline.run(KEY)
    assert (result.status, result.error) == ("FAILED", "InvalidThresholdError")
    assert result.cause_message == "THRESHOLD must be a number in (0, 1], got '1.5'"



@pytest.mark.parametrize("threshold", ["0.5", "0.99"])
def test_threshold_parameter_reaches_the_filter(endpoint, lambda_logs, threshold):
    with OfflineRuntime(endpoint.url, parameter_overrides={**TWO_CLASSES, "ConfidenceThreshold": threshold},
                        lambda_log_dir=lambda_logs, bucket=f"threshold-{threshold[2:]}") as rt:
        rt.put_image(KEY, png_bytes())
        endpoint.enqueue([Answer.probabilities(0.9, 0.1)])
        result = rt.run(KEY)
    assert result.status == ("SUCCEEDED" if threshold == "0.5" else "FAILED")



@pytest.mark.parametrize("value", ["1.5", "0", "high", "-0.2"])
def test_threshold_parameter_outside_its_allowed_pattern_is_refused_like_cloudformation(value):
    with pytest.raises(TemplateError, match=f"ConfidenceThreshold='{value}': A number in \\(0, 1\\]"):
        SamTemplate(REPO_ROOT / "template.yaml", {"ConfidenceThreshold": value})
