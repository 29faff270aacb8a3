"""`deploy new` then `deploy update` against moto's SageMaker, S3 and CloudFormation: the gate must have judged the
candidate's archive against the archive the endpoint serves; the stack's ModelVersion is named after an update;
an archive whose code/ nobody scored is refused."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from common import settings
from common.model_archive import resolve_model
from data_prep.cli import main as data_prep_main
from data_prep.packaging import package_model
from data_prep.training import sagemaker_deploy as hosting
from data_prep.training.sagemaker_deploy import archive_key, served_models
from testkit.models import confidently_wrong
from tests.support import run_main

BUCKET = "scones-deploy-data"
ENDPOINT = "scones-image-classifier"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
STACK = "scones-image-classification"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(hosting, "update_endpoint", moto_update_endpoint)
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        session.client("s3").create_bucket(Bucket=BUCKET)
        yield session


def moto_update_endpoint(client, endpoint_name, model_request, shift, alarms, **_) -> hosting.UpdateResult:
    """moto 5.2.5 has no UpdateEndpoint (its requests are Stubber-tested in test_rollout.py): the same model and
    configuration calls against moto, then the endpoint switched to the new configuration in moto's backend, as a
    finished blue/green update leaves it."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import sagemaker_backends

    old_config, live = hosting.check_updatable(client, endpoint_name, shift)
    model_name = hosting.ensure_model(client, model_request)
    new_config = f"{model_name}-updated"
    client.create_endpoint_config(EndpointConfigName=new_config, ProductionVariants=[
        {**live["ProductionVariants"][0], "ModelName": model_name}])
    sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].endpoints[endpoint_name].endpoint_config_name = new_config
    return hosting.UpdateResult(endpoint_name, old_config, new_config, "InService", rolled_back=False)


@pytest.fixture(scope="module")
def candidate(tiny_model, tmp_path_factory) -> Path:
    """Another model (other ONNX bytes, its own bound baseline) to roll out over the tiny one."""
    return confidently_wrong(tiny_model, tmp_path_factory.mktemp("candidate") / "model", wrong_on="bicycle",
                             read_as="motorcycle")


def identity(model_dir: Path, tmp_path: Path) -> dict:
    packaged = package_model(model_dir, tmp_path / model_dir.name / "model.tar.gz")
    return {"model_sha256": packaged.model_sha256, "archive_sha256": packaged.archive_sha256}


def write_gate(path: Path, new: dict, baseline: dict) -> str:
    path.write_text(json.dumps({"verdict": "promote", "worse_on": [], "images": 50, "new_model": new,
                                "baseline_model": baseline}))
    return str(path)


def deploy(monkeypatch, capsys, *arguments: str):
    result = run_main(data_prep_main, ["deploy", *arguments, "--endpoint-name", ENDPOINT, "--bucket", BUCKET, "--role",
                                       ROLE], monkeypatch=monkeypatch, capsys=capsys)
    return result.status, result.stdout, result.stderr


def test_an_update_needs_a_gate_against_what_serves_and_names_the_stacks_model_version(
        aws, tiny_model, candidate, tmp_path, monkeypatch, capsys):
    status, output, error = deploy(monkeypatch, capsys, "new", "--model-dir", str(tiny_model), "--no-gate")
    assert status == 0, error
    serving = identity(tiny_model, tmp_path / "served")
    served = served_models(aws.client("sagemaker"), ENDPOINT)["AllTraffic"]
    assert served == {**serving, "model_data_url": f"s3://{BUCKET}/{archive_key(serving['archive_sha256'])}"}
    new = identity(candidate, tmp_path / "new")

    # the docs' old walk: the candidate judged against itself, while the endpoint serves another model
    itself = write_gate(tmp_path / "self.json", new, new)
    status, _, error = deploy(monkeypatch, capsys, "update", "--model-dir", str(candidate), "--gate", itself,
                              "--rollback-alarm", "alarm-a")
    assert status == 2
    assert error.splitlines()[-1] == (
        f"GateOtherBaselineError: the gate in {itself} judged NEW against model_sha256 {new['model_sha256'][:12]}..., "
        f"archive_sha256 {new['archive_sha256'][:12]}..., but endpoint {ENDPOINT} serves model_sha256 "
        f"{serving['model_sha256'][:12]}..., archive_sha256 {serving['archive_sha256'][:12]}...: evaluate against "
        f"what serves (`.venv/bin/python -m data_prep evaluate --baseline-model {served['model_data_url']} ...`)")
    assert served_models(aws.client("sagemaker"), ENDPOINT)["AllTraffic"] == served  # nothing rolled out

    aws.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps({
        "Parameters": {"ModelVersion": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
        Parameters=[{"ParameterKey": "ModelVersion", "ParameterValue": f"sha256-{serving['model_sha256'][:12]}"}])
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text('parameter_overrides = "EndpointName=\\"old\\" DataBucketName=\\"\\" '
                         'ModelVersion=\\"unversioned\\""\n')
    monkeypatch.setattr(settings, "SAMCONFIG_PATH", samconfig)
    against_served = write_gate(tmp_path / "gate.json", new, serving)
    status, output, error = deploy(monkeypatch, capsys, "update", "--model-dir", str(candidate), "--gate",
                                   against_served, "--rollback-alarm", "alarm-a", "--traffic", "all-at-once",
                                   "--stack-name", STACK, "--update-samconfig")
    assert status == 0, error
    version = f"sha256-{new['model_sha256'][:12]}"
    assert served_models(aws.client("sagemaker"), ENDPOINT)["AllTraffic"]["archive_sha256"] == new["archive_sha256"]
    assert (f"warning: stack {STACK}'s ModelVersion is 'sha256-{serving['model_sha256'][:12]}': its events name that "
            f"model, not {version}, until the stack is deployed with ModelVersion={version}") in error
    assert output.splitlines()[-1] == (f"samconfig.toml updated (ModelVersion={version}); next: make deploy (the "
                                       "pinned SAM CLI, in .venv-sam, builds and deploys)")
    assert samconfig.read_text() == (f'parameter_overrides = "EndpointName=\\"{ENDPOINT}\\" DataBucketName=\\"{BUCKET}'
                                     f'\\" ModelVersion=\\"{version}\\""\n')


def test_without_update_samconfig_the_update_says_the_sam_deploy_line(aws, tiny_model, candidate, tmp_path,
                                                                         monkeypatch, capsys):
    assert deploy(monkeypatch, capsys, "new", "--model-dir", str(tiny_model), "--no-gate")[0] == 0
    new = identity(candidate, tmp_path / "new")
    gate = write_gate(tmp_path / "gate.json", new, identity(tiny_model, tmp_path / "served"))
    status, output, error = deploy(monkeypatch, capsys, "update", "--model-dir", str(candidate), "--gate", gate,
                                   "--rollback-alarm", "alarm-a", "--traffic", "all-at-once")
    assert status == 0, error
    assert "warning: stack" not in error  # no such stack: nothing to compare
    assert output.splitlines()[-1] == (f'next: make build && .venv-sam/bin/sam deploy --parameter-overrides '
                                       f'EndpointName="{ENDPOINT}" DataBucketName="{BUCKET}" '
                                       f'ModelVersion="sha256-{new["model_sha256"][:12]}"')


def edited_archive(model_dir: Path, out: Path) -> Path:
    """The archive `package` writes, with code/inference.py answering [0.5, 0.5] whatever it is sent."""
    import tarfile

    from common.model_archive import write_tar_gz

    packaged = package_model(model_dir, out.with_name("original.tar.gz"))
    with tarfile.open(packaged.archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    files["code/inference.py"] += b"\n\ndef predict_fn(input_data, model):\n    return [0.5, 0.5]\n"
    write_tar_gz(files.items(), out)
    return out


def test_an_archive_whose_code_nobody_scored_is_not_deployed(aws, tiny_model, tmp_path, monkeypatch, capsys):
    archive = edited_archive(tiny_model, tmp_path / "edited.tar.gz")
    status, _, error = deploy(monkeypatch, capsys, "new", "--archive", str(archive), "--no-gate")
    assert status == 2
    assert error.splitlines()[-1] == (
        f"ForeignCodeError: {archive}: its code/ is not what this repository's `package` writes (code/inference.py "
        "differ): what it answers was never scored; score it through its own hooks with `.venv/bin/python -m "
        "data_prep evaluate --score-with-hooks`, or package the model again, then deploy with --gate")
    assert aws.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0  # nothing uploaded
    resolved = resolve_model(archive, tmp_path / "read")
    judged_elsewhere = {"model_sha256": resolved.sha256, "archive_sha256": "ef" * 32}
    gate = write_gate(tmp_path / "gate.json", judged_elsewhere, {})
    status, _, error = deploy(monkeypatch, capsys, "new", "--archive", str(archive), "--gate", gate)
    assert status == 2 and "GateOtherModelError: " in error and "judged the archive with sha256 efefefefefef" in error
