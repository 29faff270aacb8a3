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


MONITORING = REPO_ROOT / "docs" / "monitoring.md"


def test_monitoring_says_how_far_the_scheduled_quality_check_scales_with_the_functions_own_numbers():
    """The section WindowTooLargeError's message sends people to, its arithmetic from the function's timeout, margin,
    readers, page size and record cap, at the latency it assumes (100 ms a call)."""
    from functions.check_quality import app
    from modelquality.bucket import S3Bucket

    function = load_template(TEMPLATE_PATH)["Resources"]["CheckQualityFunction"]["Properties"]
    timeout, cap = int(function["Timeout"]), int(function["Environment"]["Variables"]["MAX_RECORDS"])
    budget = timeout - app.MARGIN_SECONDS
    reads_per_second = app.READ_WORKERS / 0.1
    keys_per_second = S3Bucket.PAGE / 0.1
    full_reads = 2 * cap / reads_per_second
    text = " ".join(MONITORING.read_text().split())
    assert "\n## How far the scheduled check scales\n" in MONITORING.read_text()
    assert f"{timeout} s − {app.MARGIN_SECONDS:g} s = {budget:g} s" in text
    assert f"{app.READ_WORKERS} at a time: {reads_per_second:g} records/s" in text
    assert f"{S3Bucket.PAGE:,} keys a page, one page at a time: {keys_per_second:,.0f} keys/s" in text
    assert f"2 × {cap:,} / {reads_per_second:g} = {full_reads:g} s" in text
    assert f"{(budget - full_reads) * keys_per_second:,.0f} keys" in text  # what is left for listing then
    assert f"{budget * keys_per_second:,.0f} keys" in text  # listing alone
    assert "WindowTooLargeError" in text and "CheckQualityErrorsAlarm" in text and "ListedKeys" in text
