"""The offline forwarder applies an EventBridge InputTransformer as EventBridge documents it, no more forgiving."""

from __future__ import annotations

import json

import pytest

from workflow.offline.trigger import InputTransformerError, RetryPolicy, apply_input_transformer

EVENT = {
    "version": "0", "id": "7bf73129", "detail-type": "Object Created", "source": "aws.s3",
    "time": "2026-11-24T07:00:00Z",
    "resources": ["arn:aws:s3:::scones"],
    "detail": {"bucket": {"name": "scones"}, "object": {"key": 'incoming/say "cheese" \\ a+b é 🚲.png', "size": 3}},
}
PATHS = {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"}


def transform(template: str, paths: dict[str, str] = PATHS, event: dict = EVENT) -> str:
    return apply_input_transformer({"InputPathsMap": paths, "InputTemplate": template}, event,
                                   rule_arn="arn:aws:events:us-east-1:123456789012:rule/r", rule_name="r")


def test_a_placeholder_in_a_value_position_becomes_the_value_as_json():
    text = transform('{"image_data": "", "s3_bucket": <bucket>, "s3_key": <key>}')
    assert json.loads(text) == {"image_data": "", "s3_bucket": "scones",
                                "s3_key": 'incoming/say "cheese" \\ a+b é 🚲.png'}


def test_a_placeholder_inside_quotes_is_pasted_unescaped_as_eventbridge_does():
    text = transform('{"s3_key": "<key>"}')
    assert text == '{"s3_key": "incoming/say "cheese" \\ a+b é 🚲.png"}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # Step Functions refuses this input, offline as on AWS


def test_a_quoted_placeholder_with_a_plain_value_gives_valid_json():
    assert json.loads(transform('{"bucket": "<bucket>", "n": <size>}', {**PATHS, "size": "$.detail.object.size"})) == {
        "bucket": "scones", "n": 3}


def test_escaped_quotes_in_the_template_do_not_end_the_string():
    assert transform('{"m": "bucket \\"<bucket>\\" got <key>", "b": <bucket>}').endswith('", "b": "scones"}')


def test_objects_arrays_indices_and_reserved_variables():
    paths = {"detail": "$.detail.bucket", "first": "$.resources[0]", "all": "$.resources[*]"}
    result = json.loads(transform('{"d": <detail>, "f": <first>, "a": <all>, "rule": <aws.events.rule-name>, '
                                  '"at": <aws.events.event.ingestion-time>, "e": <aws.events.event>}', paths))
    assert result["d"] == {"name": "scones"}
    assert (result["f"], result["a"], result["rule"], result["at"]) == (
        "arn:aws:s3:::scones", ["arn:aws:s3:::scones"], "r", "2026-11-24T07:00:00Z")
    assert "detail" not in result["e"] and result["e"]["id"] == "7bf73129"


def test_a_path_missing_from_the_event_gives_no_value():
    assert json.loads(transform('{"v": <missing>, "s": "x<missing>y"}', {"missing": "$.detail.nope"})) == {
        "v": None, "s": "xy"}


def test_a_text_template_gets_the_text_of_each_value():
    assert transform('"bucket <bucket> has <key>"') == '"bucket scones has incoming/say "cheese" \\ a+b é 🚲.png"'


@pytest.mark.parametrize("template,paths,message", [
    ('{"k": <undeclared>}', PATHS, "invalid placeholder undeclared"),
    ('{"k": <key>}', {"key": "detail.object.key"}, "must start with \\$"),
    ('{"k": <key>}', {"key": "$.detail..key"}, "unsupported JSONPath"),
])
def test_what_put_targets_refuses_is_refused(template, paths, message):
    with pytest.raises(InputTransformerError, match=message):
        transform(template, paths)


def test_retry_policy_reads_the_template_and_backs_off_exponentially():
    policy = RetryPolicy.of_rule({"RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 86400}},
                                 base_delay_s=0.1, max_delay_s=1.0)
    assert (policy.maximum_retry_attempts, policy.maximum_event_age_s) == (10, 86400)
    assert [policy.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert RetryPolicy.of_rule({}).maximum_retry_attempts == 185  # EventBridge's default: 185 attempts, 24 hours
