"""Rolling a new model out with deployment guardrails: the exact CreateEndpointConfig and UpdateEndpoint requests,
the template's alarms found and checked, SageMaker's limits refused before any call, a rollback reported."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from common.artefacts import ArtefactError
from data_prep.cli import cli
from data_prep.training.evaluate import GateHeldError, GateOtherModelError
from data_prep.training.sagemaker_deploy import (
    SageMakerSetupError,
    TrafficShift,
    check_updatable,
    rollback_alarms,
    update_endpoint,
)

ENDPOINT = "scones-image-classifier"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
CAPTURE = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://b/data_capture",
           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}
ALARMS = ["scones-Endpoint5xxAlarm-ABC", "scones-EndpointLatencyAlarm-DEF"]


def test_a_canary_is_a_blue_green_update_rolled_back_on_the_alarms():
    assert TrafficShift("canary", canary_percent=10, wait_seconds=600, termination_wait_seconds=300) \
        .deployment_config(ALARMS) == {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 600,
                                                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
                "TerminationWaitInSeconds": 300,
                "MaximumExecutionTimeoutInSeconds": 2 * 600 + 300 + 1800},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARMS[0]}, {"AlarmName": ALARMS[1]}]}}


def test_linear_and_all_at_once_shifts():
    linear = TrafficShift("linear", linear_step_percent=25, wait_seconds=120, termination_wait_seconds=60)
    assert linear.deployment_config(ALARMS)["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {"Type": "LINEAR", "WaitIntervalInSeconds": 120,
                                        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}},
        "TerminationWaitInSeconds": 60, "MaximumExecutionTimeoutInSeconds": 4 * 120 + 60 + 1800}
    once = TrafficShift("all-at-once", wait_seconds=0, termination_wait_seconds=0, max_execution_seconds=600)
    assert once.deployment_config(ALARMS[:1])["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        "TerminationWaitInSeconds": 0, "MaximumExecutionTimeoutInSeconds": 600}
    slow = TrafficShift("linear", linear_step_percent=10, wait_seconds=2500, termination_wait_seconds=3600)
    assert (slow.total_wait_seconds, slow.execution_timeout) == (28600, 28800)  # + 30 min, capped at the maximum


@pytest.mark.parametrize(("shift", "message"), [
    ({"kind": "canary", "canary_percent": 60}, "the canary must be 1 to 50% of the new fleet, got 60%"),
    ({"kind": "linear", "linear_step_percent": 5}, "a linear step must be 10 to 50% of the new fleet, got 5%"),
    ({"wait_seconds": 3601}, "wait-seconds must be 0 to 3600, got 3601"),
    ({"termination_wait_seconds": -1}, "termination-wait-seconds must be 0 to 3600, got -1"),
    ({"wait_seconds": 600, "max_execution_seconds": 1000},
     "the deployment may take 1000 s at most, which must lie in 600-28800 s and exceed its 1500 s of waiting"),
    ({"kind": "linear", "linear_step_percent": 10, "wait_seconds": 3600},
     "the deployment may take 28800 s at most, which must lie in 600-28800 s and exceed its 36300 s of waiting"),
    ({"kind": "blue"}, "traffic 'blue': choose all-at-once, canary, linear"),
])
def test_sagemakers_limits_are_refused_before_any_call(shift, message):
    with pytest.raises(SageMakerSetupError) as refused:
        TrafficShift(**shift)
    assert str(refused.value) == message


def test_rollback_needs_one_to_ten_alarms():
    with pytest.raises(SageMakerSetupError, match="1 to 10 alarms, got 0"):
        TrafficShift().deployment_config([])


def alarm(name: str, endpoint: str) -> dict:
    return {"AlarmName": name, "Dimensions": [{"Name": "EndpointName", "Value": endpoint},
                                              {"Name": "VariantName", "Value": "AllTraffic"}]}


def resource(logical_id: str, physical_id: str) -> dict:
    return {"StackResourceDetail": {"LogicalResourceId": logical_id, "PhysicalResourceId": physical_id,
                                    "ResourceType": "AWS::CloudWatch::Alarm", "LastUpdatedTimestamp": "2026-11-24",
                                    "ResourceStatus": "CREATE_COMPLETE"}}


@pytest.mark.parametrize("watched", [ENDPOINT, "another-endpoint"])
def test_the_stacks_endpoint_alarms_are_found_and_must_watch_this_endpoint(watched):
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    with Stubber(cloudformation) as cfn, Stubber(cloudwatch) as cw:
        for logical_id, name in zip(("Endpoint5xxAlarm", "EndpointLatencyAlarm"), ALARMS, strict=True):
            cfn.add_response("describe_stack_resource", resource(logical_id, name),
                             {"StackName": "scones", "LogicalResourceId": logical_id})
        cw.add_response("describe_alarms", {"MetricAlarms": [alarm(name, watched) for name in ALARMS]},
                        {"AlarmNames": ALARMS})
        if watched == ENDPOINT:
            assert rollback_alarms(cloudformation, cloudwatch, "scones", ENDPOINT) == ALARMS
        else:
            with pytest.raises(SageMakerSetupError, match=f"alarm {ALARMS[0]} watches endpoint 'another-endpoint', "
                                                          f"not '{ENDPOINT}'"):
                rollback_alarms(cloudformation, cloudwatch, "scones", ENDPOINT)


def test_a_stack_without_the_alarms_says_what_to_do():
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cloudformation) as cfn:
        cfn.add_client_error("describe_stack_resource", "ValidationError", "Stack 'nope' does not exist")
        with pytest.raises(SageMakerSetupError, match=r"stack 'nope' has no Endpoint5xxAlarm \(Stack 'nope' does not "
                                                      r"exist\): deploy the workflow"):
            rollback_alarms(cloudformation, boto3.client("cloudwatch", region_name="us-east-1"), "nope", ENDPOINT)


def endpoint(status: str, config: str) -> dict:
    return {"EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
            "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": "2026-11-24",
            "LastModifiedTime": "2026-11-24"}


@pytest.fixture(scope="module")
def request_(tiny_model, tmp_path_factory) -> dict:
    """The CreateModel request `deploy update` makes for the tiny model's archive (its sha256s, tags, image)."""
    from common.model_archive import resolve_model
    from data_prep.training.sagemaker_deploy import (
        ModelToServe,
        archive_key,
        create_model_request,
        local_archive,
        model_name_for,
    )

    scratch = tmp_path_factory.mktemp("request")
    archive = local_archive(resolve_model(tiny_model, scratch), scratch)
    serving = ModelToServe(archive.model, f"s3://b/{archive_key(archive.sha256)}", archive.sha256)
    return create_model_request(model_name_for(ENDPOINT, archive.sha256), ROLE, IMAGE, serving, "us-east-1")


def test_the_request_names_the_archive_and_its_bytes(request_, tiny_model):
    sha = json.loads((tiny_model / "metadata.json").read_text())["model_sha256"]
    digest = request_["PrimaryContainer"]["Environment"]["SCONES_ARCHIVE_SHA256"]
    assert request_["ModelName"] == f"{ENDPOINT}-{digest[:12]}"
    assert request_["PrimaryContainer"]["ModelDataUrl"] == f"s3://b/models/archives/sha256-{digest}/model.tar.gz"
    assert request_["Tags"] == [{"Key": "scones:model-sha256", "Value": sha},
                                {"Key": "scones:archive-sha256", "Value": digest},
                                {"Key": "scones:model-version", "Value": f"sha256-{sha[:12]}"}]


def stub_checks(stubber: Stubber) -> None:
    live_variant = {"VariantName": "AllTraffic", "ModelName": "old-model", "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 2, "InitialVariantWeight": 1.0}
    stubber.add_response("describe_endpoint", endpoint("InService", "old-config"), {"EndpointName": ENDPOINT})
    stubber.add_response("describe_endpoint_config", {
        "EndpointConfigName": "old-config", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/o",
        "ProductionVariants": [live_variant], "DataCaptureConfig": CAPTURE, "CreationTime": "2026-11-24"},
        {"EndpointConfigName": "old-config"})


def stub_create_and_update(stubber: Stubber, create_model: dict, config_name: str) -> None:
    """A new model (DescribeModel: not found, then CreateModel with exactly `create_model`), an endpoint config
    naming it and the canary UpdateEndpoint naming that config."""
    stubber.add_client_error("describe_model", "ValidationException", "Could not find model", 400,
                             expected_params={"ModelName": create_model["ModelName"]})
    stubber.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"},
                         create_model)
    stubber.add_response("create_endpoint_config", {
        "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/n"}, {
        "EndpointConfigName": config_name,
        "ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2,
                                "ModelName": create_model["ModelName"], "InitialVariantWeight": 1.0}],
        "DataCaptureConfig": CAPTURE})
    stubber.add_response("update_endpoint", {
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"}, {
        "EndpointName": ENDPOINT, "EndpointConfigName": config_name,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 300,
                                                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20}},
                "TerminationWaitInSeconds": 120, "MaximumExecutionTimeoutInSeconds": 2520},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARMS[0]}, {"AlarmName": ALARMS[1]}]}}})


def stub_update(stubber: Stubber, request: dict, final_status: str, final_config: str) -> None:
    stub_checks(stubber)
    stub_create_and_update(stubber, request, "new-config")
    stubber.add_response("describe_endpoint", endpoint("Updating", "old-config"), {"EndpointName": ANY})
    stubber.add_response("describe_endpoint", endpoint(final_status, final_config), {"EndpointName": ANY})


SHIFT = TrafficShift("canary", canary_percent=20, wait_seconds=300, termination_wait_seconds=120)


def test_the_update_keeps_the_variant_instances_and_capture_and_only_changes_the_model(request_):
    client = boto3.client("sagemaker", region_name="us-east-1")
    notes: list[str] = []
    with Stubber(client) as stubber:
        stub_update(stubber, request_, "InService", "new-config")
        result = update_endpoint(client, ENDPOINT, request_, SHIFT, ALARMS, config_name="new-config",
                                 poll_seconds=0, announce=notes.append)
        stubber.assert_no_pending_responses()
    assert result.deployed and (result.old_config, result.new_config) == ("old-config", "new-config")
    assert notes == [f"updating {ENDPOINT}: old-config -> new-config (canary, rollback on {', '.join(ALARMS)})",
                     f"{ENDPOINT}: Updating", f"{ENDPOINT}: InService"]


@pytest.fixture(scope="module")
def expected_create_model(tiny_model, tmp_path_factory) -> dict:
    """CreateModel as SageMaker must receive it for the tiny model, written out from the bytes themselves: the
    archive `data_prep package` writes (hashed here), the ONNX file's sha256 in metadata.json, the PyTorch
    inference image, script mode's environment pointing at code/inference.py."""
    import hashlib

    from data_prep.packaging import package_model

    archive = package_model(tiny_model, tmp_path_factory.mktemp("expected") / "model.tar.gz").archive
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    sha = json.loads((tiny_model / "metadata.json").read_text())["model_sha256"]
    return {"ModelName": f"{ENDPOINT}-{digest[:12]}", "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {
                "Image": IMAGE, "ModelDataUrl": f"s3://b/models/archives/sha256-{digest}/model.tar.gz",
                "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-east-1",
                                "SCONES_MODEL_SHA256": sha, "SCONES_ARCHIVE_SHA256": digest,
                                "SCONES_MODEL_VERSION": f"sha256-{sha[:12]}"}},
            "Tags": [{"Key": "scones:model-sha256", "Value": sha}, {"Key": "scones:archive-sha256", "Value": digest},
                     {"Key": "scones:model-version", "Value": f"sha256-{sha[:12]}"}]}


def test_the_update_chain_sends_the_exact_create_model_then_the_config_and_update_that_name_it(
        request_, expected_create_model):
    """Describe, CreateModel (each parameter written out, not the request the code built), CreateEndpointConfig
    naming that model, UpdateEndpoint naming that config: the Stubber fails on any other parameter."""
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        stub_checks(stubber)
        stub_create_and_update(stubber, expected_create_model, "scones-new-config")
        result = update_endpoint(client, ENDPOINT, request_, SHIFT, ALARMS, config_name="scones-new-config",
                                 wait=False)
        stubber.assert_no_pending_responses()
    assert (result.old_config, result.new_config, result.status) == ("old-config", "scones-new-config", "Updating")


def test_a_rolled_back_update_is_reported_as_not_deployed(request_):
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        stub_update(stubber, request_, "InService", "old-config")  # an alarm went off: the blue fleet serves again
        result = update_endpoint(client, ENDPOINT, request_, SHIFT, ALARMS, config_name="new-config", poll_seconds=0)
    assert result.rolled_back and not result.deployed and result.status == "InService"


def test_an_endpoint_that_is_not_in_service_or_missing_is_not_touched(request_):
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response("describe_endpoint", endpoint("Updating", "old-config"), {"EndpointName": ENDPOINT})
        with pytest.raises(SageMakerSetupError, match="is Updating; it must be InService to be updated"):
            update_endpoint(client, ENDPOINT, request_, SHIFT, ALARMS)
        stubber.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint", 400)
        with pytest.raises(SageMakerSetupError,
                           match="does not exist: create it with `.venv/bin/python -m data_prep deploy"):
            check_updatable(client, ENDPOINT, SHIFT)
        stubber.assert_no_pending_responses()


def test_the_update_command_refuses_options_it_does_not_take(tiny_model):
    result = CliRunner().invoke(cli, ["deploy", "update", "--model-dir", str(tiny_model), "--serverless"])
    assert result.exit_code == 2 and "No such option '--serverless'" in result.output
    result = CliRunner().invoke(cli, ["deploy", "update", "--canary-percent", "60"])
    assert result.exit_code == 2 and "60 is not in the range 1<=x<=50" in result.output
    result = CliRunner().invoke(cli, ["deploy", "update", "--no-gate"])
    assert result.exit_code == 2 and "name the model to deploy with one of --model-dir" in result.output


def gate_file(tmp_path, verdict: str, worse_on: list[str], sha256: str | None,
              archive_sha256: str | None = None) -> str:
    path = tmp_path / "gate.json"
    table = {"verdict": verdict, "worse_on": worse_on, "images": 102}
    if sha256:
        table["new_model"] = {"model_sha256": sha256, "archive_sha256": archive_sha256}
    path.write_text(json.dumps(table))
    return str(path)


def archive_sha256(model_dir, tmp_path) -> str:
    from data_prep.packaging import package_model

    return package_model(model_dir, tmp_path / "packaged" / "model.tar.gz").archive_sha256


@pytest.mark.parametrize("command", ["new", "update"])
def test_deploying_needs_the_gates_verdict_or_an_explicit_no_gate(tiny_model, tmp_path, command):
    for options in ([], ["--gate", gate_file(tmp_path, "promote", [], "0" * 64), "--no-gate"]):
        result = CliRunner().invoke(cli, ["deploy", command, "--model-dir", str(tiny_model), *options])
        assert result.exit_code == 2 and "deploying needs the gate's verdict on the model" in result.output


class ReachedAws(Exception):
    pass


@pytest.mark.parametrize("command", ["new", "update"])
def test_only_a_promote_verdict_for_these_bytes_goes_on_to_aws(tiny_model, tmp_path, monkeypatch, command):
    import data_prep.model_cli

    def reached(*args, **kwargs):
        raise ReachedAws()

    monkeypatch.setattr(data_prep.model_cli, "aws_session", reached)
    sha = json.loads((tiny_model / "metadata.json").read_text())["model_sha256"]
    digest = archive_sha256(tiny_model, tmp_path)
    deploy = ["deploy", command, "--model-dir", str(tiny_model), "--gate"]
    held = CliRunner().invoke(cli, [*deploy, gate_file(tmp_path, "hold", ["precision_at_threshold"], sha, digest)])
    assert isinstance(held.exception, GateHeldError) and held.exception.exit_status == 1
    assert str(held.exception) == (f"the gate in {tmp_path / 'gate.json'} held this model (worse on "
                                   "precision_at_threshold): it is not rolled out")
    other = CliRunner().invoke(cli, [*deploy, gate_file(tmp_path, "promote", [], "ab" * 32, digest)])
    assert isinstance(other.exception, GateOtherModelError) and other.exception.exit_status == 2
    assert f"judged the model with sha256 abababababab..., not this one ({sha[:12]}...)" in str(other.exception)
    # the same model.onnx in another archive (other code/ or baseline) is not what the gate judged
    other_archive = CliRunner().invoke(cli, [*deploy, gate_file(tmp_path, "promote", [], sha, "cd" * 32)])
    assert isinstance(other_archive.exception, GateOtherModelError)
    assert f"judged the archive with sha256 cdcdcdcdcdcd..., not this one ({digest[:12]}...)" in \
        str(other_archive.exception)
    no_archive = CliRunner().invoke(cli, [*deploy, gate_file(tmp_path, "promote", [], sha)])
    assert isinstance(no_archive.exception, GateOtherModelError)
    assert "does not record which archive it judged" in str(no_archive.exception)
    unrecorded = CliRunner().invoke(cli, [*deploy, gate_file(tmp_path, "promote", [], None)])
    assert isinstance(unrecorded.exception, GateOtherModelError)
    (tmp_path / "gate.json").write_text("{}")
    unreadable = CliRunner().invoke(cli, [*deploy, str(tmp_path / "gate.json")])
    assert isinstance(unreadable.exception, ArtefactError) and "holds no gate verdict" in str(unreadable.exception)
    promoted = CliRunner().invoke(cli, [*deploy, gate_file(tmp_path, "promote", [], sha, digest)])
    assert isinstance(promoted.exception, ReachedAws), promoted.output
    assert f"gate: promote ({tmp_path / 'gate.json'}: 102 images; archive sha256 {digest[:12]}...)" in promoted.output
