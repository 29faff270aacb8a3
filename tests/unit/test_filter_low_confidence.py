from __future__ import annotations

import hashlib
import json

import pytest

from common.settings import confidence_threshold
from common.template import SamTemplate
from functions.filter_low_confidence import app
from tests.support import REPO_ROOT, load_event
from workflow.offline.lambda_api import LocalFunction


def test_confident_event_is_passed_on_unchanged_with_the_audit_choice_beside_it(lambda_context):
    event = load_event("filter_low_confidence_pass.json")
    assert app.lambda_handler(event, lambda_context) == {**event, "audit": {"sampled": False, "rate": 0.02}}


def test_the_audit_is_chosen_by_the_images_content_hash_whatever_the_key(lambda_context):
    """A retry, a second execution or another key of the same image decides the same; about the rate's share is
    chosen."""
    event = load_event("filter_low_confidence_pass.json")
    chosen = []
    for index in range(2000):
        digest = hashlib.sha256(str(index).encode()).hexdigest()
        decisions = {str(app.audit_choice({**event["body"], "s3_key": key, "content_sha256": digest}, 0.05))
                     for key in (f"a/{index}.png", f"b/{index}.jpg")}
        assert len(decisions) == 1  # the key does not matter
        chosen.append(app.audit_choice({**event["body"], "content_sha256": digest}, 0.05)["sampled"])
    assert sum(chosen) == 102  # 5.1% of 2,000 at a rate of 5%
    assert app.audit_choice({**event["body"], "content_sha256": "0" * 64}, 0.0)["sampled"] is False
    assert app.audit_choice({**event["body"], "content_sha256": "f" * 64}, 1.0)["sampled"] is True


@pytest.mark.parametrize("raw", ["-0.1", "1.5", "abc", "", "nan"])
def test_a_function_started_with_a_bad_audit_rate_fails_every_invocation_by_name(raw):
    spec = SamTemplate(REPO_ROOT / "template.yaml").functions()["FilterLowConfidenceFunction"]
    function = LocalFunction(spec, {"AUDIT_RATE": raw})

    payload, failed = function.invoke(load_event("filter_low_confidence_pass.json"))

    assert failed
    error = json.loads(payload)
    assert error["errorType"] == "InvalidAuditRateError"
    assert error["errorMessage"] == f"AUDIT_RATE must be a number from 0 to 1, got {raw!r}"


def test_low_confidence_event_raises_naming_the_key_and_confidence(lambda_context):
    with pytest.raises(app.LowConfidenceError) as raised:
        app.lambda_handler(load_event("filter_low_confidence_low.json"), lambda_context)
    threshold = confidence_threshold()  # the function's THRESHOLD is the template's ConfidenceThreshold
    assert str(raised.value) == (f"scones-image-classification/test/bicycle_s_000513.png: top confidence 0.6100 is "
                                 f"below the threshold {threshold}")


def test_confidence_equal_to_the_threshold_passes():
    app.check_confidence("k", 0.93, 0.93)
    with pytest.raises(app.LowConfidenceError):
        app.check_confidence("k", 0.9299, 0.93)


def test_metrics_are_emitted_in_embedded_metric_format(lambda_context, capsys):
    with pytest.raises(app.LowConfidenceError):
        app.lambda_handler(load_event("filter_low_confidence_low.json"), lambda_context)
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["Confidence"] == [61.0]
    assert record["LowConfidence"] == [1.0]
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SconesUnlimited/ImageClassification"


@pytest.mark.parametrize("raw", ["0", "-0.1", "1.5", "abc", "", None, "nan"])
def test_bad_thresholds_are_refused(raw):
    with pytest.raises(app.InvalidThresholdError, match="THRESHOLD must be a number in \\(0, 1\\]"):
        app.parse_threshold(raw)


@pytest.mark.parametrize("raw,value", [("0.93", 0.93), ("1", 1.0), (".5", 0.5)])
def test_good_thresholds_are_parsed(raw, value):
    assert app.parse_threshold(raw) == value


def test_a_function_started_with_a_bad_threshold_fails_every_invocation_by_name():
    spec = SamTemplate(REPO_ROOT / "template.yaml").functions()["FilterLowConfidenceFunction"]
    function = LocalFunction(spec, {"THRESHOLD": "high"})

    payload, failed = function.invoke(load_event("filter_low_confidence_pass.json"))

    assert failed
    error = json.loads(payload)
    assert error["errorType"] == "InvalidThresholdError"
    assert error["errorMessage"] == "THRESHOLD must be a number in (0, 1], got 'high'"


@pytest.mark.parametrize("body", [{}, {"inferences": []}, {"inferences": "0.9"}])
def test_event_without_inferences_is_invalid(body, lambda_context):
    with pytest.raises(app.InvalidEventError):
        app.lambda_handler({"body": body}, lambda_context)
