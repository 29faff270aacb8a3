"""The docs' capacity arithmetic is the template's: what a deploy reserves of the account's Lambda concurrency, and
how many records the scheduled quality check gets through before it fails by name."""

from __future__ import annotations

from common.cfn_yaml import load_template
from common.settings import REPO_ROOT, TEMPLATE_PATH, template_parameter_defaults

DEPLOY = REPO_ROOT / "docs" / "deploy.md"
UNRESERVED_MINIMUM = 100  # Lambda keeps this much of the account's concurrency unreserved (PutFunctionConcurrency)


def reserving_functions() -> list[str]:
    """The functions whose ReservedConcurrentExecutions is the FunctionReservedConcurrency parameter."""
    resources = load_template(TEMPLATE_PATH)["Resources"]
    return sorted(name for name, resource in resources.items()
                  if "FunctionReservedConcurrency" in str(resource.get("Properties", {})
                                                          .get("ReservedConcurrentExecutions", "")))


def test_deploy_warns_what_the_stack_reserves_of_the_accounts_lambda_concurrency():
    functions = reserving_functions()
    assert functions == ["ClassifyImageFunction", "FilterLowConfidenceFunction", "SerializeImageFunction"]
    reserved = len(functions) * int(template_parameter_defaults()["FunctionReservedConcurrency"])
    text = " ".join(DEPLOY.read_text().split())
    assert f"{len(functions)} × {template_parameter_defaults()['FunctionReservedConcurrency']} = {reserved}" in text
    assert f"at least {reserved + UNRESERVED_MINIMUM} concurrent executions" in text
    assert "aws lambda get-account-settings" in text  # how to see the quota and what is unreserved
    assert "FunctionReservedConcurrency=-1" in text  # the deploy that reserves nothing
    assert "L-B99A9384" in text  # the quota to raise in Service Quotas
