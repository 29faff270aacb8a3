"""Least privilege by prefix, on the transformed template: each role may touch only the prefixes of the data
bucket its job needs. A role that gains an S3 statement must be added here with its prefixes."""

from __future__ import annotations

import pytest

from common.template import SamTemplate
from tools.cfn import TEMPLATE, transformed_template

BUCKET = "scones-images"
CAPTURE = "data_capture/scones-image-classifier/*"
# role -> action -> the objects (prefix patterns) it may touch, or for s3:ListBucket the s3:prefix it may list
# (None: the whole bucket's names, with the reason in the template).
PREFIXES: dict[str, dict[str, list[str] | None]] = {
    "SerializeImageFunctionRole": {
        "s3:GetObject": ["incoming/*", "uploads/*", "batch/*", "scones-image-classification/test/*"],
        "s3:PutObject": ["uploads/*"],
        "s3:ListBucket": None,  # S3 tells a missing key (404) from a forbidden one (403) only to a lister
    },
    "CheckDriftFunctionRole": {"s3:GetObject": [CAPTURE, "monitoring/baseline.json"], "s3:ListBucket": [CAPTURE]},
    "SummarizeBatchFunctionRole": {"s3:GetObject": ["batch-results/*"], "s3:PutObject": ["batch-results/*"],
                                   "s3:ListBucket": ["batch-results/*", "batch/*"]},
    "ImageClassificationStateMachineRole": {"s3:PutObject": ["review/*", "audit/*"]},
    "ImageClassificationExpressStateMachineRole": {"s3:PutObject": ["review/*", "audit/*"]},
    "CheckQualityFunctionRole": {"s3:GetObject": ["review/*", "audit/*", "labels/*"],
                                 "s3:ListBucket": ["review/*", "audit/*", "labels/*"]},
    "BatchClassificationStateMachineRole": {
        "s3:GetObject": ["batch-results/*"], "s3:PutObject": ["batch-results/*"],
        "s3:AbortMultipartUpload": ["batch-results/*"], "s3:ListMultipartUploadParts": ["batch-results/*"],
        "s3:ListBucket": ["batch/*"]},
}


def s3_grants(cfn: dict, role: str, bucket: str, **parameters: str) -> dict[str, list[str] | None]:
    """action -> the object prefixes (or ListBucket's s3:prefix condition, None when unconditioned) a role's
    inline policies grant in `bucket`; any grant on another bucket or on every bucket fails."""
    resolver = SamTemplate(TEMPLATE, {"DataBucketName": bucket, **parameters}, document=cfn)
    grants: dict[str, list[str] | None] = {}
    for policy in resolver.resolve(cfn["Resources"][role]["Properties"].get("Policies", [])):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
            for action in (a for a in actions if a.startswith("s3:")):
                assert statement["Effect"] == "Allow"
                if action == "s3:ListBucket":
                    assert resources == [f"arn:aws:s3:::{bucket}"], (role, resources)
                    listed = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
                    grants[action] = None if listed is None else sorted([listed] if isinstance(listed, str)
                                                                        else listed)
                    continue
                for resource in resources:
                    assert resource.startswith(f"arn:aws:s3:::{bucket}/"), (role, action, resource)
                    grants.setdefault(action, []).append(resource.removeprefix(f"arn:aws:s3:::{bucket}/"))  # type: ignore[union-attr]
    return {action: sorted(value) if value is not None else None for action, value in grants.items()}


@pytest.fixture(scope="module")
def cfn() -> dict:
    return transformed_template()


@pytest.mark.parametrize("role", sorted(PREFIXES))
def test_each_role_touches_only_its_prefixes(cfn, role):
    expected = {action: sorted(value) if value is not None else None for action, value in PREFIXES[role].items()}
    assert s3_grants(cfn, role, BUCKET) == expected


def test_every_role_with_s3_access_is_held_to_its_prefixes(cfn):
    roles = [name for name, resource in cfn["Resources"].items() if resource["Type"] == "AWS::IAM::Role"]
    with_s3 = {role for role in roles if s3_grants(cfn, role, BUCKET)}
    assert with_s3 == set(PREFIXES)


def test_no_function_gets_a_bucket_wide_sam_policy_template():
    from common.cfn_yaml import load_template

    for name, resource in load_template(TEMPLATE)["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            policies = resource["Properties"].get("Policies", [])
            templates = {key for policy in policies if isinstance(policy, dict) for key in policy} - {"Statement"}
            assert not templates & {"S3ReadPolicy", "S3CrudPolicy", "S3FullAccessPolicy", "S3WritePolicy"}, name


def test_the_batch_prefix_is_a_parameter_the_roles_follow():
    cfn = transformed_template({"BatchPrefix": "photos/", "DatasetPrefix": "data/v2"})
    parameters = {"BatchPrefix": "photos/", "DatasetPrefix": "data/v2"}
    serialize = s3_grants(cfn, "SerializeImageFunctionRole", BUCKET, **parameters)
    assert serialize["s3:GetObject"] == ["data/v2/test/*", "incoming/*", "photos/*", "uploads/*"]
    assert s3_grants(cfn, "BatchClassificationStateMachineRole", BUCKET, **parameters)["s3:ListBucket"] == [
        "photos/*"]
    assert s3_grants(cfn, "SummarizeBatchFunctionRole", BUCKET, **parameters)["s3:ListBucket"] == [
        "batch-results/*", "photos/*"]
