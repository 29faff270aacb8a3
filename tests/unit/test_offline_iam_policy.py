"""Offline IAM's decision on one request (workflow.offline.iam_policy): IAM's policy evaluation logic, the subset
the template's roles use, and a refusal for anything it cannot evaluate."""

from __future__ import annotations

import pytest

from workflow.offline.iam_policy import (
    LIST_BUCKET_KEYS,
    Request,
    Statement,
    authorization_requests,
    evaluate,
    wildcard_match,
)

BUCKET = "arn:aws:s3:::scones-offline"


def statements(*raw: dict) -> list[Statement]:
    return [Statement.parse(item) for item in raw]


def listing(prefix: str | None) -> Request:
    context = {} if prefix is None else {"s3:prefix": prefix}
    return Request("s3:ListBucket", BUCKET, context, LIST_BUCKET_KEYS)


READ_TEST = {"Sid": "ReadTest", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/data/test/*"}


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("arn:aws:s3:::b/data/test/*", "arn:aws:s3:::b/data/test/a/b.png", True),  # `*` crosses `/`
    ("arn:aws:s3:::b/data/test/*", "arn:aws:s3:::b/data/train/a.png", False),
    ("arn:aws:lambda:*:*:function:Serialize*", "arn:aws:lambda:us-east-1:1:function:SerializeImage:live", True),
    ("arn:aws:s3:::b/?.png", "arn:aws:s3:::b/a.png", True),
    ("arn:aws:s3:::b/?.png", "arn:aws:s3:::b/ab.png", False),
    ("arn:aws:s3:::b/[a].png", "arn:aws:s3:::b/a.png", False),  # no other character is special
])
def test_wildcards_are_iams_star_and_question_mark(pattern, value, expected):
    assert wildcard_match(pattern, value) is expected


def test_an_allow_allows_only_its_actions_on_its_resources():
    policy = statements(READ_TEST)
    assert evaluate(policy, Request("s3:GetObject", f"{BUCKET}/data/test/a.png")).allowed
    assert evaluate(policy, Request("S3:getobject", f"{BUCKET}/data/test/a.png")).allowed  # actions: any case
    assert not evaluate(policy, Request("s3:GetObject", f"{BUCKET}/DATA/test/a.png")).allowed  # resources: exact case
    refused = evaluate(policy, Request("s3:PutObject", f"{BUCKET}/data/test/a.png"))
    assert (refused.allowed, refused.explicit, refused.reason) == (False, False, "no statement allows it")


def test_an_explicit_deny_beats_any_allow():
    policy = statements(READ_TEST, {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:*",
                                    "Resource": f"{BUCKET}/data/test/secret/*"})
    assert evaluate(policy, Request("s3:GetObject", f"{BUCKET}/data/test/a.png")).allowed
    refused = evaluate(policy, Request("s3:GetObject", f"{BUCKET}/data/test/secret/a.png"))
    assert (refused.allowed, refused.explicit, refused.reason) == (False, True, "Deny statement NoSecrets")


def test_string_like_on_the_listed_prefix_as_the_template_uses_it():
    policy = statements({"Sid": "ListCapture", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET,
                         "Condition": {"StringLike": {"s3:prefix": ["review/*", "audit/*"]}}})
    assert evaluate(policy, listing("review/2026/")).allowed
    assert evaluate(policy, listing("audit/")).allowed
    assert not evaluate(policy, listing("labels/")).allowed
    assert not evaluate(policy, listing(None)).allowed  # IAM: a condition on an absent key does not hold


def test_string_equals_on_the_metric_namespace():
    policy = statements({"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
                         "Condition": {"StringEquals": {"cloudwatch:namespace": "SconesUnlimited/ModelDrift"}}})
    (ours,) = authorization_requests("cloudwatch", "PutMetricData", {"Namespace": "SconesUnlimited/ModelDrift"},
                                     "us-east-1", "123456789012")
    (theirs,) = authorization_requests("cloudwatch", "PutMetricData", {"Namespace": "SconesUnlimited/modeldrift"},
                                       "us-east-1", "123456789012")
    assert evaluate(policy, ours).allowed and not evaluate(policy, theirs).allowed


def test_what_cannot_be_evaluated_never_allows_and_in_a_deny_refuses():
    numeric = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET,
               "Condition": {"NumericLessThanEquals": {"s3:max-keys": "10"}}}
    unknown_key = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET,
                   "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}
    not_action = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    for raw in (numeric, unknown_key, not_action):
        decision = evaluate(statements(raw), listing("batch/"))
        assert not decision.allowed and "cannot evaluate" in decision.reason, raw
    deny = evaluate(statements({"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                               {**numeric, "Sid": "Guard", "Effect": "Deny"}), listing("batch/"))
    assert (deny.allowed, deny.explicit) == (False, True)
    assert deny.reason == "Deny statement Guard cannot be evaluated offline (condition operator NumericLessThanEquals)"


@pytest.mark.parametrize(("service", "operation", "params", "expected"), [
    ("s3", "GetObject", {"Bucket": "b", "Key": "k/a.png"}, [("s3:GetObject", "arn:aws:s3:::b/k/a.png")]),
    ("s3", "HeadObject", {"Bucket": "b", "Key": "k"}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
    ("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "batch/"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
    ("sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "Scones"},
     [("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/scones")]),
    ("lambda", "Invoke", {"FunctionName": "SerializeImageFunction"},
     [("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:123456789012:function:SerializeImageFunction")]),
    ("stepfunctions", "StartExecution", {"stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:m"},
     [("states:StartExecution", "arn:aws:states:us-east-1:1:stateMachine:m")]),
])
def test_a_call_is_described_as_the_service_authorization_reference_does(service, operation, params, expected):
    requests = authorization_requests(service, operation, params, "us-east-1", "123456789012")
    assert [(r.action, r.resource) for r in requests or []] == expected


def test_an_operation_the_model_does_not_describe_has_no_description():
    assert authorization_requests("s3", "PutBucketPolicy", {"Bucket": "b"}, "us-east-1", "1") is None
    assert authorization_requests("iam", "CreateRole", {}, "us-east-1", "1") is None
