"""What bounds a flood's cost on AWS, on the transformed template: the API stage's throttling (template
parameters) and the reserved concurrency of the functions the API, the S3 trigger and the batch scale."""

from __future__ import annotations

import pytest

from common.template import SamTemplate
from tools.cfn import TEMPLATE, transformed_template

PER_IMAGE_FUNCTIONS = ["SerializeImageFunction", "ClassifyImageFunction", "FilterLowConfidenceFunction"]


@pytest.fixture(scope="module")
def cfn() -> dict:
    return transformed_template()


def test_the_api_stage_throttles_every_method_to_the_rate_and_burst_parameters(cfn):
    (stage,) = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    (settings,) = stage["Properties"]["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (
        {"Ref": "ApiThrottlingRateLimit"}, {"Ref": "ApiThrottlingBurstLimit"})
    defaults = SamTemplate(TEMPLATE).parameters
    assert (defaults["ApiThrottlingRateLimit"], defaults["ApiThrottlingBurstLimit"]) == ("50", "100")
    resolved = SamTemplate(TEMPLATE, {"ApiThrottlingRateLimit": "5", "ApiThrottlingBurstLimit": "10"},
                           document=cfn).resolve(settings)
    assert (resolved["ThrottlingRateLimit"], resolved["ThrottlingBurstLimit"]) == ("5", "10")


@pytest.mark.parametrize("function", PER_IMAGE_FUNCTIONS)
def test_each_per_image_function_reserves_the_concurrency_parameter(cfn, function):
    properties = cfn["Resources"][function]["Properties"]
    assert properties["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "FunctionReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}


def test_reserved_concurrency_is_on_by_default_and_minus_one_turns_it_off():
    assert SamTemplate(TEMPLATE).parameters["FunctionReservedConcurrency"] == "50"
    assert SamTemplate(TEMPLATE).conditions["HasReservedConcurrency"] is True
    assert SamTemplate(TEMPLATE, {"FunctionReservedConcurrency": "-1"}).conditions["HasReservedConcurrency"] is False
