"""Every AWS command on a machine without AWS setup, or against an AWS that refuses: one line on stderr saying what
to do, nothing on stdout, exit status 3 (docs/cli.md).

The first hour tried these and got 67 to 283 lines of traceback. The commands run in this process through their
real main() (run_cli: argv, exit status, streams); the refusals come from a stub on 127.0.0.1 speaking each
service's wire format (testkit.aws_stub), reached through AWS_ENDPOINT_URL as a real endpoint would be.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from data_prep.cli import main as data_prep_main
from monitoring.cli import main as monitoring_main
from review.cli import main as review_main
from testkit.aws_stub import FAULTS, aws_error_stub
from tests.support import bare_aws_variables, run_main
from workflow.cli import main as workflow_main

JOB = "scones-image-classification-20260101-120000"  # a training job name: the model is found through SageMaker
# command -> (main, arguments, the first AWS call it makes)
COMMANDS = {
    "data_prep stage --dry-run": (data_prep_main, ["stage", "--dry-run", "--dataset", "{dataset}"],
                                  "GetCallerIdentity"),
    "data_prep all --dry-run": (data_prep_main, ["all", "--dry-run", "--source", "{photos}", "--out",
                                                 "{dataset}"], "GetCallerIdentity"),
    "data_prep train sagemaker": (data_prep_main, ["train", "sagemaker", "--role", "arn:aws:iam::1:role/R"],
                                  "GetCallerIdentity"),
    "data_prep deploy new": (data_prep_main, ["deploy", "new", "--training-job", "scones-image-classification-1",
                                              "--no-gate"], "GetCallerIdentity"),
    "data_prep deploy update": (data_prep_main, ["deploy", "update", "--training-job", "scones-image-classification-1",
                                                 "--no-gate"], "GetCallerIdentity"),
    "workflow start-executions": (workflow_main, ["start-executions", "--count", "2"], "DescribeStacks"),
    "workflow enable-trigger": (workflow_main, ["enable-trigger"], "DescribeStacks"),
    "workflow cleanup": (workflow_main, ["cleanup", "--yes"], "DescribeEndpoint"),
    "workflow cleanup --dry-run": (workflow_main, ["cleanup", "--dry-run"], "DescribeEndpoint"),
    "workflow classify-prefix": (workflow_main, ["classify-prefix", "--prefix", "s3://scones-data/photos/"],
                                 "DescribeStacks"),
    "monitoring report --capture s3://": (monitoring_main, ["report", "--capture", "s3://scones-data/data_capture",
                                                            "--out", "{out}"], "ListObjectsV2"),
    "review serve --source s3://": (review_main, ["serve", "--source", "s3://scones-data", "--port", "0"],
                                    "ListObjectsV2"),
    "monitoring drift --capture s3://": (monitoring_main, ["drift", "--capture", "s3://scones-data/data_capture",
                                                           "--baseline", "{baseline}"], "ListObjectsV2"),
    "monitoring upload-baseline": (monitoring_main, ["upload-baseline", "--baseline", "{baseline}"],
                                   "GetCallerIdentity"),
    "monitoring upload-baseline --bucket": (monitoring_main, ["upload-baseline", "--baseline", "{baseline}",
                                                              "--bucket", "scones-data"], "PutObject"),
    "monitoring quality --source s3://": (monitoring_main, ["quality", "--source", "s3://scones-data"],
                                          "ListObjectsV2"),
    "monitoring report --audits s3://": (monitoring_main, ["report", "--capture", "{out}/capture", "--out", "{out}",
                                                           "--audits", "s3://scones-data"], "ListObjectsV2"),
    "monitoring report --model <job>": (monitoring_main, ["report", "--capture", "{out}/capture", "--out", "{out}",
                                                          "--model", JOB], "DescribeTrainingJob"),
    "data_prep evaluate --model <job>": (data_prep_main, ["evaluate", "--model", JOB, "--baseline-model-dir", "{model}",
                                                          "--data-dir", "{dataset}", "--out", "{out}/gate.json"],
                                         "DescribeTrainingJob"),
    "data_prep evaluate --audits s3://": (data_prep_main, ["evaluate", "--model-dir", "{model}", "--baseline-model-dir",
                                                           "{model}", "--data-dir", "{dataset}", "--out",
                                                           "{out}/gate.json", "--audits", "s3://scones-data"],
                                          "ListObjectsV2"),
    "data_prep train local --labels s3://": (data_prep_main, ["train", "local", "--data-dir", "{photos}",
                                                              "--model-dir", "{out}/model", "--labels", "s3://scones-data/labels/"],
                                             "ListObjectsV2"),
}
# A command that names the refusal itself (the bucket it could not read), instead of the runner's line.
DENIED_LINES = {"review serve --source s3://": "ReviewSourceUnavailableError: s3://scones-data cannot be read "
                                               "(AccessDenied): give the stack's review bucket (its DataBucketName "
                                               "output)",
                "monitoring upload-baseline --bucket": "BucketAccessError: access denied to bucket 'scones-data': the "
                                                       "credentials need s3:PutObject"}
# The codes each command's first call gets back, by protocol: STS and CloudFormation speak query, SageMaker JSON,
# S3 its REST-XML.
CODES = {"DescribeEndpoint": {"denied": "AccessDeniedException", "expired": "ExpiredTokenException",
                              "throttled": "ThrottlingException"},
         "DescribeTrainingJob": {"denied": "AccessDeniedException", "expired": "ExpiredTokenException",
                                 "throttled": "ThrottlingException"},
         "ListObjectsV2": {"denied": "AccessDenied", "expired": "ExpiredToken", "throttled": "SlowDown"},
         "PutObject": {"denied": "AccessDenied", "expired": "ExpiredToken", "throttled": "SlowDown"}}
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
            aws_error_stub(FAULTS["throttled"]) as throttled, aws_error_stub(FAULTS["closed"]) as closed:
        yield {"denied": denied, "expired": expired, "throttled": throttled, "closed": closed}


@pytest.fixture(scope="module")
def past_identity():
    """AWS that tells the caller who they are (STS GetCallerIdentity) and refuses everything else: the commands get
    past their credentials check and fail at their first real step, wherever it is."""
    with aws_error_stub(FAULTS["denied"], allow_identity=True) as stub:
        yield stub


@pytest.fixture
def stub(request, stubs):
    chosen = stubs[request.param]
    chosen.requests.clear()
    return chosen


TRAINED: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _a_trained_model(tiny_model):
    """{model} in a command's arguments: the session's tiny model, for commands that read one before any AWS call."""
    TRAINED["model"] = tiny_model


@pytest.fixture(autouse=True)
def _samconfig_names_no_bucket(monkeypatch):
    """The repository's samconfig.toml: DataBucketName="" (the SageMaker default bucket, found through STS)."""
    monkeypatch.setattr("common.settings.deployed_bucket", lambda: None)


def invoke(name, tmp_path, monkeypatch, capsys, *extra, **variables):
    main, arguments, _ = COMMANDS[name]
    (tmp_path / "dataset").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)  # the default paths (out/...) are this folder's
    if any("{baseline}" in argument for argument in arguments):
        from common.artefacts import write_baseline
        from monitoring.baseline import build_baseline
        from testkit.capture import CLASSES, images, probabilities

        write_baseline(tmp_path, build_baseline(images(20, 1), probabilities(20, 1), CLASSES))
    if any("{photos}" in argument for argument in arguments) and not (tmp_path / "photos").exists():
        from testkit.images import labelled_folder

        labelled_folder(tmp_path / "photos", per_class=2)
    if any("{model}" in argument for argument in arguments) and not (tmp_path / "model").exists():
        import shutil

        shutil.copytree(TRAINED["model"], tmp_path / "model")
    arguments = [a.format(dataset=tmp_path / "dataset", out=tmp_path / "report", baseline=tmp_path / "baseline.json",
                          photos=tmp_path / "photos", model=tmp_path / "model") for a in arguments]
    return run_main(main, [*arguments, *extra], monkeypatch=monkeypatch, capsys=capsys,
                    environment=bare_aws_variables(tmp_path / "home", **variables))


def assert_one_line(result, line):
    assert (result.status, result.stdout, result.stderr) == (3, "", line + "\n")


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


@pytest.mark.parametrize("name", [name for name in COMMANDS if name != "data_prep all --dry-run"])
def test_a_refusal_past_the_credentials_check_is_one_line_too(name, past_identity, tmp_path, monkeypatch, capsys):
    """No command prints more than its one line on a failure (no library logging, no SDK telemetry traceback).
    (`all` is left out: it builds the dataset, with its progress bar and result line, before its first call.)"""
    past_identity.requests.clear()
    result = invoke(name, tmp_path, monkeypatch, capsys, AWS_REGION="eu-west-1", AWS_ENDPOINT_URL=past_identity.url,
                    **KEYS)
    assert (result.status, result.stdout, len(result.stderr.splitlines())) == (3, "", 1), result.stderr
    assert "denied" in result.stderr.lower()
    assert [call for call in past_identity.requests if call != "query:GetCallerIdentity"]  # it got past STS


@pytest.mark.parametrize("stub", ["closed"], indirect=True)
@pytest.mark.parametrize("name", COMMANDS)
def test_a_connection_closed_before_the_answer(name, stub, tmp_path, monkeypatch, capsys):
    result = invoke(name, tmp_path, monkeypatch, capsys, AWS_REGION="eu-west-1", AWS_ENDPOINT_URL=stub.url,
                    AWS_MAX_ATTEMPTS="1", **KEYS)
    assert (result.status, result.stdout, len(result.stderr_lines)) == (3, "", 1), result.stderr
    line = result.stderr_lines[0]
    assert line.startswith(f'the connection to AWS failed (Connection was closed before we received a valid response '
                           f'from endpoint URL: "{stub.url}/')
    assert line.endswith('"): check the network and run the command again')


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


def test_serve_with_an_s3_capture_refused_is_one_line(tiny_model, stubs, tmp_path):
    """`serve --capture s3://` checks the destination at start (a PutObject probe); in its own process, since serve
    sets up its request log."""
    from tests.support import bare_aws_environment, run_module

    environment = bare_aws_environment(tmp_path / "home", AWS_REGION="eu-west-1", AWS_MAX_ATTEMPTS="1",
                                       AWS_ENDPOINT_URL=stubs["denied"].url, **KEYS)
    result = run_module("data_prep", "serve", "--model-dir", str(tiny_model), "--port", "0", "--capture",
                        "s3://scones-data/dc", env=environment, cwd=tmp_path)
    assert (result.status, result.stdout) == (3, "")
    assert result.stderr == ("CaptureDestinationUnavailableError: capture destination s3://scones-data/dc cannot be "
                             f"written: access denied (AccessDenied in PutObject): {DENIED_MESSAGE}. Ask for that "
                             "permission or use another profile\n")


def test_serve_with_an_s3_capture_takes_the_aws_options(tmp_path, monkeypatch, capsys):
    (tmp_path / "model").mkdir()
    arguments = ["serve", "--model-dir", str(tmp_path / "model"), "--port", "0", "--capture", "s3://scones-data/dc"]
    assert_one_line(run_main(data_prep_main, [*arguments, "--profile", "nope", "--region", "eu-west-1"],
                             monkeypatch=monkeypatch, capsys=capsys,
                             environment=bare_aws_variables(tmp_path / "home")), MISSING_PROFILE)
    assert_one_line(run_main(data_prep_main, [*arguments, "--region", "eu-west-1"], monkeypatch=monkeypatch,
                             capsys=capsys, environment=bare_aws_variables(tmp_path / "home")), NO_CREDENTIALS)


def test_train_on_sagemaker_refused_at_create_training_job_prints_its_one_line(tmp_path):
    """The issue's 105 lines (SDK INFO logging, five telemetry tracebacks, then the error): now the step's note and
    the error line. SageMaker refuses CreateTrainingJob behind a proxy in front of a moto server holding the staged
    data; the command runs in its own process, as a user runs it."""
    import json

    import boto3

    from testkit.aws_stub import aws_fault_proxy
    from tests.support import bare_aws_environment, run_module
    from workflow.offline.runtime import moto_http_server

    with moto_http_server() as url:
        s3 = boto3.client("s3", endpoint_url=url, region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        s3.create_bucket(Bucket="staged-data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        staged = {"train.lst": b"0\t0\ttrain/a.png\n", "test.lst": b"0\t0\ttest/a.png\n",
                  "dataset.json": json.dumps({"class_names": ["bicycle", "motorcycle"]}).encode()}
        for name, body in staged.items():
            s3.put_object(Bucket="staged-data", Key=f"scones-image-classification/{name}", Body=body)
        create = "json:SageMaker.CreateTrainingJob"
        with aws_fault_proxy(url, FAULTS["denied"], refuse=lambda name: name == create) as proxy:
            environment = bare_aws_environment(tmp_path / "home", AWS_REGION="eu-west-1", AWS_MAX_ATTEMPTS="1",
                                               AWS_ENDPOINT_URL=proxy.url, **KEYS)
            result = run_module("data_prep", "train", "sagemaker", "--bucket", "staged-data", "--role",
                                "arn:aws:iam::123456789012:role/Trainer", env=environment, cwd=tmp_path)
    assert (result.status, result.stdout, proxy.refused) == (3, "", [create])
    note, line = result.stderr.splitlines()
    assert note.startswith("source: s3://staged-data/models/scones-image-classification-")
    assert line == (f"access denied (AccessDeniedException in CreateTrainingJob): {DENIED_MESSAGE}. Ask for that "
                    "permission or use another profile")
