"""`workflow start-executions` against a deployed stack: the real ASL and handlers (the offline runtime) behind a moto
server, the command in its own process reaching it only through AWS_ENDPOINT_URL, as it reaches AWS.

An execution's outcome is what Step Functions says (status, error, cause); a call AWS refuses while the command
watches is exit 3 in one line, never "an execution failed"; any execution that failed unexpectedly is exit 1. Faults
come in the services' wire format from a proxy in front of the moto server (testkit.aws_stub.aws_fault_proxy).
"""

from __future__ import annotations

import csv
import io
import json

import boto3
import pytest

from common.settings import OFFLINE_REGION, batch_prefix
from imaging.preprocess import encode_png, to_model_input
from testkit.aws_stub import FAULTS, aws_fault_proxy
from testkit.images import png_bytes
from tests.support import SCRIPTED_STACK, bare_aws_environment, run_module
from workflow.offline.runtime import OfflineRuntime
from workflow.offline.stub_endpoint import Answer

STACK = "scones-start-executions"
DENIED = ("User: arn:aws:iam::123456789012:user/dev is not authorized to perform this action. Ask for that "
          "permission or use another profile")


@pytest.fixture(scope="module")
def stack(endpoint, lambda_logs):
    """The offline runtime behind a moto server, and a CloudFormation stack whose outputs name its bucket and
    STANDARD state machine (what `sam deploy` leaves)."""
    with OfflineRuntime(endpoint.url, lambda_log_dir=lambda_logs, expose_http=True, trigger=False,
                        parameter_overrides=SCRIPTED_STACK) as runtime:  # the scripted answers: two-class, confident
        template = {"Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                    "Outputs": {"DataBucketName": {"Value": runtime.bucket},
                                "StateMachineArn": {"Value": runtime.state_machine_arn}}}
        boto3.client("cloudformation", region_name=OFFLINE_REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(template))
        yield runtime


@pytest.fixture
def answers(endpoint):
    """Answers by image (the endpoint receives the 32x32 PNG serialize-image makes), so concurrency cannot mix them."""
    yield endpoint.by_body
    endpoint.by_body.clear()


def readable(name: str) -> str:
    """A dataset prefix of this test's own that serialize-image's role may read (offline IAM holds it to its role, as
    AWS does): under BatchPrefix, as only the template's own DatasetPrefix/test/ is readable besides."""
    return f"{batch_prefix()}{name}"


def stage(runtime, answers, prefix: str, images: dict[str, tuple[bytes, str, tuple[float, float] | None]]) -> None:
    """Stage test images under PREFIX/test/ with their manifest, as `data_prep stage` does; script each answer."""
    prefix = readable(prefix)
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["file", "label", "class_index", "split", "sha256"])
    for name, (data, label, answer) in images.items():
        runtime.put_image(f"{prefix}/test/{name}", data)
        writer.writerow([f"test/{name}", label, ["bicycle", "motorcycle"].index(label), "test", "0" * 64])
        if answer is not None:
            answers[encode_png(to_model_input(data))] = Answer.probabilities(*answer)
    runtime.put_image(f"{prefix}/manifest.csv", rows.getvalue().encode())


def start_executions(tmp_path, url: str, prefix: str, *extra: str):
    prefix = readable(prefix)
    environment = bare_aws_environment(tmp_path / "home", AWS_ENDPOINT_URL=url, AWS_REGION=OFFLINE_REGION,
                                       AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                                       AWS_MAX_ATTEMPTS="1")
    return run_module("workflow", "start-executions", "--stack-name", STACK, "--prefix", prefix, "--count", "10",
                      *extra, env=environment, cwd=tmp_path)


MIXED = {"good_1.png": (png_bytes(seed=61), "bicycle", (0.97, 0.03)),
         "good_2.png": (png_bytes(seed=62), "motorcycle", (0.01, 0.99)),
         "low_1.png": (png_bytes(seed=63), "bicycle", (0.6, 0.4)),
         "low_2.png": (png_bytes(seed=64), "bicycle", (0.45, 0.55)),
         "corrupt.png": (png_bytes(64, 64)[:200], "bicycle", None)}


def test_an_execution_that_failed_is_exit_1_and_the_summary_says_so(stack, answers, tmp_path):
    stage(stack, answers, "mixed", MIXED)
    result = start_executions(tmp_path, stack.moto_url, "mixed", "--json")
    assert result.status == 1, result.stderr
    summary = json.loads(result.stdout)
    assert {name: summary[name] for name in ("executions", "succeeded", "review", "failed", "aborted",
                                             "failed_by_error", "unexpected")} == {
        "executions": 5, "succeeded": 2, "review": 2, "failed": 1, "aborted": 0,
        "failed_by_error": {"NotAnImageError": 1}, "unexpected": 1}
    # the model's answer for the reviewed images comes from the executions (low_2 was wrong): 3 of 4 right
    assert (summary["accuracy_of_passed"], summary["accuracy_of_model"]) == (1.0, 0.75)
    assert summary["verdict"] == "FAILED: 1 of 5 executions failed unexpectedly (NotAnImageError 1)"
    table = start_executions(tmp_path, stack.moto_url, "mixed")
    assert table.status == 1 and table.stdout.splitlines()[-1] == summary["verdict"]


def test_executions_that_succeeded_or_went_to_review_are_exit_0(stack, answers, tmp_path):
    stage(stack, answers, "fine", {name: MIXED[name] for name in ("good_1.png", "low_1.png", "low_2.png")})
    result = start_executions(tmp_path, stack.moto_url, "fine")
    assert (result.status, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1] == "OK: none of the 3 executions failed (1 succeeded, 2 sent to review)"


def test_review_records_are_not_what_an_outcome_is_read_from(stack, answers, tmp_path):
    """A review record that is not a JSON object (a JSON string, as one emulator wrote it) or that cannot be read:
    the executions still ended FAILED with LowConfidenceError, so they were sent to review."""
    stage(stack, answers, "records", {name: MIXED[name] for name in ("good_1.png", "low_1.png", "low_2.png")})
    review_get = f"s3:GET /{stack.bucket}/review/"
    with aws_fault_proxy(stack.moto_url, FAULTS["denied"], refuse=lambda name: False,
                         replace=lambda name: b'"{\\"s3_key\\": \\"not an object\\"}"' if name.startswith(review_get)
                         else None) as as_a_string:
        result = start_executions(tmp_path, as_a_string.url, "records", "--json")
    assert (result.status, result.stderr) == (0, "")
    assert {name: json.loads(result.stdout)[name] for name in ("succeeded", "review", "failed")} == {
        "succeeded": 1, "review": 2, "failed": 0}
    with aws_fault_proxy(stack.moto_url, FAULTS["denied"], refuse=lambda name: name.startswith(review_get)) as denied:
        result = start_executions(tmp_path, denied.url, "records", "--json")
    assert (result.status, result.stderr) == (0, "")
    assert {name: json.loads(result.stdout)[name] for name in ("succeeded", "review", "failed")} == {
        "succeeded": 1, "review": 2, "failed": 0}


def test_a_get_object_denied_mid_run_is_exit_3_in_one_line_not_a_summary(stack, answers, tmp_path):
    """The staged manifest (the true labels) is read after the test images are listed: a refusal there is AWS
    refusing, not "no labels"."""
    stage(stack, answers, "manifest", {name: MIXED[name] for name in ("good_1.png", "low_1.png")})
    manifest_get = f"s3:GET /{stack.bucket}/{readable('manifest')}/manifest.csv"
    with aws_fault_proxy(stack.moto_url, FAULTS["denied"], refuse=lambda name: name == manifest_get) as proxy:
        result = start_executions(tmp_path, proxy.url, "manifest")
    assert (result.status, result.stdout) == (3, "")
    assert result.stderr_lines == [f"access denied (AccessDenied in GetObject): {DENIED}"]
    assert proxy.refused == [manifest_get]


@pytest.mark.parametrize("fault,line", [
    ("denied", f"access denied (AccessDeniedException in DescribeExecution): {DENIED}"),
    ("throttled", "AWS is throttling DescribeExecution (ThrottlingException): wait a little and run the command "
                  "again"),
])
def test_an_execution_that_cannot_be_watched_is_exit_3_and_no_other_starts(stack, answers, tmp_path, fault, line):
    stage(stack, answers, f"watch-{fault}", {name: MIXED[name] for name in ("good_1.png", "low_1.png", "low_2.png")})
    describe = "json:AWSStepFunctions.DescribeExecution"
    with aws_fault_proxy(stack.moto_url, FAULTS[fault], refuse=lambda name: name == describe) as proxy:
        result = start_executions(tmp_path, proxy.url, f"watch-{fault}", "--concurrency", "1")
    assert (result.status, result.stdout, result.stderr_lines) == (3, "", [line])
    assert proxy.forwarded.count("json:AWSStepFunctions.StartExecution") == 1  # the run stopped at the first
    assert proxy.refused == [describe]
