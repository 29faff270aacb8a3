"""Every AWS command on a machine without AWS setup, or against an AWS that refuses: one line on stderr saying what
to do, nothing on stdout, exit status 3 (docs/cli.md).

The first hour tried these and got 67 to 283 lines of traceback. The commands run in this process through their
real main() (run_cli: argv, exit status, streams); the refusals come from a stub on 127.0.0.1 speaking each
service's wire format (testkit.aws_stub), reached through AWS_ENDPOINT_URL as a real endpoint would be.
"""

from __future__ import annotations

import socket

import pytest

from data_prep.cli import main as data_prep_main
from monitoring.cli import main as monitoring_main
from review.cli import main as review_main
from testkit.aws_stub import FAULTS, aws_error_stub
from tests.support import bare_aws_variables, run_main
from workflow.cli import main as workflow_main

# command -> (main, arguments, the first AWS call it makes)
COMMANDS = {
    "data_prep stage --dry-run": (data_prep_main, ["stage", "--dry-run", "--dataset", "{dataset}"],
                                  "GetCallerIdentity"),
    "data_prep train sagemaker": (data_prep_main, ["train", "sagemaker", "--role", "arn:aws:iam::1:role/R"],
                                  "GetCallerIdentity"),
    "data_prep deploy new": (data_prep_main, ["deploy", "new", "--training-job", "scones-image-classification-1",
                                              "--no-gate"], "GetCallerIdentity"),
    "data_prep deploy update": (data_prep_main, ["deploy", "update", "--training-job", "scones-image-classification-1",
                                                 "--no-gate"], "GetCallerIdentity"),
    "workflow start-executions": (workflow_main, ["start-executions", "--count", "2"], "DescribeStacks"),
    "workflow enable-trigger": (workflow_main, ["enable-trigger"], "DescribeStacks"),
    "workflow cleanup": (workflow_main, ["cleanup", "--yes"], "DescribeEndpoint"),
    "workflow classify-prefix": (workflow_main, ["classify-prefix", "--prefix", "s3://scones-data/photos/"],
                                 "DescribeStacks"),
    "monitoring report --capture s3://": (monitoring_main, ["report", "--capture", "s3://scones-data/data_capture",
                                                            "--out", "{out}"], "ListObjectsV2"),
    "review serve --source s3://": (review_main, ["serve", "--source", "s3://scones-data", "--port", "0"],
                                    "ListObjectsV2"),
}
# A command that names the refusal itself (the bucket it could not read), instead of the runner's line.
DENIED_LINES = {"review serve --source s3://": "ReviewSourceUnavailableError: s3://scones-data cannot be read "
                                               "(AccessDenied): give the stack's review bucket (its DataBucketName "
                                               "output)"}
# The codes each command's first call gets back, by protocol: STS and CloudFormation speak query, SageMaker JSON,
# S3 its REST-XML.
CODES = {"DescribeEndpoint": {"denied": "AccessDeniedException", "expired": "ExpiredTokenException",
                              "throttled": "ThrottlingException"},
         "ListObjectsV2": {"denied": "AccessDenied", "expired": "ExpiredToken", "throttled": "SlowDown"}}
QUERY_CODES = {"denied": "AccessDenied", "expired": "ExpiredToken", "throttled": "Throttling"}

NO_CREDENTIALS = ("no AWS credentials found: run `aws configure` (or `aws sso login`), or set AWS_PROFILE / "
                  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
NO_REGION = ("no AWS region set: pass --region, or set AWS_REGION (or a region in your AWS profile or in "
             "samconfig.toml)")
MISSING_PROFILE = ("the AWS profile 'nope' does not exist: check --profile / AWS_PROFILE against "
                   "`aws configure list-profiles`")
SSO_EXPIRED = "no valid AWS SSO login (it expired, or was never made): run `aws sso login --profile NAME`"
DENIED_MESSAGE = "User: arn:aws:iam::123456789012:user/dev is not authorized to perform this action"
KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}

SSO_CONFIG = """[profile dev]
sso_start_url = https://example.awsapps.com/start
sso_region = us-east-1
sso_account_id = 123456789012
sso_role_name = Developer
region = eu-west-1
"""


@pytest.fixture(scope="module")
def stubs():
    """One stub per fault for the module; each test clears its request log."""
    with aws_error_stub(FAULTS["denied"]) as denied, aws_error_stub(FAULTS["expired"]) as expired, \
            aws_error_stub(FAULTS["throttled"]) as throttled:
        yield {"denied": denied, "expired": expired, "throttled": throttled}


@pytest.fixture
def stub(request, stubs):
    chosen = stubs[request.param]
    chosen.requests.clear()
    return chosen


def invoke(name, tmp_path, monkeypatch, capsys, *extra, **variables):
    main, arguments, _ = COMMANDS[name]
    (tmp_path / "dataset").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)  # the default paths (out/...) are this folder's
    arguments = [a.format(dataset=tmp_path / "dataset", out=tmp_path / "report") for a in arguments]
    return run_main(main, [*arguments, *extra], monkeypatch=monkeypatch, capsys=capsys,
                    environment=bare_aws_variables(tmp_path / "home", **variables))


def assert_one_line(result, line):
    assert (result.status, result.stdout, result.stderr_lines) == (3, "", [line])


@pytest.mark.parametrize("name", COMMANDS)
def test_no_region(name, tmp_path, monkeypatch, capsys):
    assert_one_line(invoke(name, tmp_path, monkeypatch, capsys, **KEYS), NO_REGION)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_region_that_is_not_a_region_name(name, tmp_path, monkeypatch, capsys):
    assert_one_line(invoke(name, tmp_path, monkeypatch, capsys, "--region", "eu_west 1", **KEYS),
                    "'eu_west 1' is not an AWS region name: pass one such as eu-west-1 (check --region, AWS_REGION, "
                    "AWS_DEFAULT_REGION, your profile and samconfig.toml)")


@pytest.mark.parametrize("name", COMMANDS)
def test_no_credentials(name, tmp_path, monkeypatch, capsys):
    assert_one_line(invoke(name, tmp_path, monkeypatch, capsys, AWS_REGION="eu-west-1"), NO_CREDENTIALS)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_profile_that_does_not_exist(name, tmp_path, monkeypatch, capsys):
    assert_one_line(invoke(name, tmp_path, monkeypatch, capsys, AWS_PROFILE="nope", AWS_REGION="eu-west-1"),
                    MISSING_PROFILE)
    assert_one_line(invoke(name, tmp_path, monkeypatch, capsys, "--profile", "nope", AWS_REGION="eu-west-1"),
                    MISSING_PROFILE)


@pytest.mark.parametrize("name", COMMANDS)
def test_an_sso_login_that_expired_or_never_happened(name, tmp_path, monkeypatch, capsys):
    config = tmp_path / "sso-config"
    config.write_text(SSO_CONFIG)  # a profile `aws configure sso` writes; no token in ~/.aws/sso/cache
    assert_one_line(invoke(name, tmp_path, monkeypatch, capsys, "--profile", "dev", AWS_CONFIG_FILE=str(config)),
                    SSO_EXPIRED)


@pytest.mark.parametrize("stub", ["denied"], indirect=True)
@pytest.mark.parametrize("name", COMMANDS)
def test_access_denied(name, stub, tmp_path, monkeypatch, capsys):
    operation = COMMANDS[name][2]
    code = CODES.get(operation, QUERY_CODES)["denied"]
    result = invoke(name, tmp_path, monkeypatch, capsys, AWS_REGION="eu-west-1", AWS_ENDPOINT_URL=stub.url, **KEYS)
    assert_one_line(result, DENIED_LINES.get(name, f"access denied ({code} in {operation}): {DENIED_MESSAGE}. Ask for "
                                                   "that permission or use another profile"))
    assert len(stub.requests) == 1  # refused at the first call: nothing was created or listed before it


@pytest.mark.parametrize("stub", ["expired"], indirect=True)
@pytest.mark.parametrize("name", COMMANDS)
def test_expired_credentials(name, stub, tmp_path, monkeypatch, capsys):
    operation = COMMANDS[name][2]
    code = CODES.get(operation, QUERY_CODES)["expired"]
    result = invoke(name, tmp_path, monkeypatch, capsys, AWS_REGION="eu-west-1", AWS_ENDPOINT_URL=stub.url, **KEYS)
    assert_one_line(result, f"AWS refused the credentials ({code} in {operation}): refresh them (`aws sso login`, "
                            "new keys)")


@pytest.mark.parametrize("stub", ["throttled"], indirect=True)
@pytest.mark.parametrize("name", COMMANDS)
def test_throttled(name, stub, tmp_path, monkeypatch, capsys):
    operation = COMMANDS[name][2]
    code = CODES.get(operation, QUERY_CODES)["throttled"]
    # botocore retries throttling (up to 5 attempts in its legacy mode, with random back-off) before the error
    # reaches the command; one attempt keeps the test short and the line is the same.
    result = invoke(name, tmp_path, monkeypatch, capsys, AWS_REGION="eu-west-1", AWS_ENDPOINT_URL=stub.url,
                    AWS_MAX_ATTEMPTS="1", **KEYS)
    assert_one_line(result, f"AWS is throttling {operation} ({code}): wait a little and run the command again")


@pytest.mark.parametrize("name", COMMANDS)
def test_aws_unreachable(name, tmp_path, monkeypatch, capsys):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = invoke(name, tmp_path, monkeypatch, capsys, AWS_REGION="eu-west-1",
                    AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_MAX_ATTEMPTS="1", **KEYS)
    assert (result.status, result.stdout, len(result.stderr_lines)) == (3, "", 1)
    line = result.stderr_lines[0]
    assert line.startswith(f'could not reach AWS (Could not connect to the endpoint URL: "http://127.0.0.1:{port}/')
    assert line.endswith('"): check the network, the region, or AWS_ENDPOINT_URL')


def test_serve_with_an_s3_capture_takes_the_aws_options(tmp_path, monkeypatch, capsys):
    (tmp_path / "model").mkdir()
    arguments = ["serve", "--model-dir", str(tmp_path / "model"), "--port", "0", "--capture", "s3://scones-data/dc"]
    assert_one_line(run_main(data_prep_main, [*arguments, "--profile", "nope", "--region", "eu-west-1"],
                             monkeypatch=monkeypatch, capsys=capsys,
                             environment=bare_aws_variables(tmp_path / "home")), MISSING_PROFILE)
    assert_one_line(run_main(data_prep_main, [*arguments, "--region", "eu-west-1"], monkeypatch=monkeypatch,
                             capsys=capsys, environment=bare_aws_variables(tmp_path / "home")), NO_CREDENTIALS)
