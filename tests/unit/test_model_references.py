"""Everything reads the same artefact: a model folder, its archive, the archive in S3 and the training job that
wrote it are the same bytes to every command; bad input is one line with the error contract's status, before
anything is created on AWS."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from common.artefacts import ArtefactError
from common.aws_errors import explain_aws_error
from common.model_archive import resolve_model, sha256_file
from data_prep.cli import main as data_prep_main
from data_prep.packaging import package_model
from monitoring.cli import main as monitoring_main
from tests.support import run_main

BUCKET = "scones-models"
JOB = "scones-image-classification-20261207-100000"


@pytest.fixture
def archive(tiny_model, tmp_path) -> Path:
    return package_model(tiny_model, tmp_path / "model.tar.gz").archive


@pytest.fixture
def s3(monkeypatch, archive):
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(archive), BUCKET, f"models/{JOB}/output/model.tar.gz")
        yield client


def described(status: str = "Completed", trainer: str | None = '"scones-image-classification"') -> dict:
    hyperparameters = {"epochs": '"1"'} | ({"scones_trainer": trainer} if trainer else {})
    return {"TrainingJobName": JOB, "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/j",
            "TrainingJobStatus": status, "SecondaryStatus": status, "HyperParameters": hyperparameters,
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/models/{JOB}/output/model.tar.gz"},
            "AlgorithmSpecification": {"TrainingInputMode": "File"}, "ResourceConfig": {"VolumeSizeInGB": 30},
            "StoppingCondition": {}, "CreationTime": "2026-12-07"}


def test_a_folder_its_archive_the_archive_in_s3_and_the_job_are_the_same_bytes(tiny_model, archive, s3, tmp_path):
    sha = sha256_file(tiny_model / "model.onnx")
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sagemaker) as stubber:
        stubber.add_response("describe_training_job", described(), {"TrainingJobName": JOB})
        found = [resolve_model(tiny_model, tmp_path / "a"), resolve_model(archive, tmp_path / "b"),
                 resolve_model(f"s3://{BUCKET}/models/{JOB}/output/model.tar.gz", tmp_path / "c", s3=s3),
                 resolve_model(JOB, tmp_path / "d", s3=s3, sagemaker=sagemaker)]
    assert {model.sha256 for model in found} == {sha}
    assert {model.archive_sha256 for model in found[1:]} == {sha256_file(archive)}
    assert found[3].describe() == {"reference": JOB, "model_sha256": sha, "archive_sha256": sha256_file(archive),
                                   "archive": f"s3://{BUCKET}/models/{JOB}/output/model.tar.gz",
                                   "code_sha256": package_model(tiny_model, tmp_path / "e.tar.gz").code_sha256,
                                   "baseline_sha256": sha256_file(tiny_model / "baseline.json")}


@pytest.mark.parametrize(("job", "message"), [
    (described("InProgress"), f"training job {JOB} is InProgress, not Completed: it has no model to read"),
    (described(trainer=None), f"training job {JOB} was not made by this project's trainer"),
])
def test_a_job_that_is_not_complete_or_not_ours_is_refused(job, message, tmp_path):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sagemaker) as stubber:
        stubber.add_response("describe_training_job", job, {"TrainingJobName": JOB})
        with pytest.raises(ArtefactError, match=message):
            resolve_model(JOB, tmp_path, s3=object(), sagemaker=sagemaker)


def test_a_missing_archive_in_s3_is_named_and_a_denied_one_is_awss_line(s3, tmp_path):
    with pytest.raises(ArtefactError, match=f"s3://{BUCKET}/nope.tar.gz does not exist"):
        resolve_model(f"s3://{BUCKET}/nope.tar.gz", tmp_path, s3=s3)
    denied = boto3.client("s3", region_name="us-east-1")
    with Stubber(denied) as stubber:
        stubber.add_client_error("head_object", "403", "Forbidden", 403)
        with pytest.raises(Exception) as raised:
            resolve_model(f"s3://{BUCKET}/secret.tar.gz", tmp_path, s3=denied)
    assert explain_aws_error(raised.value).startswith("access denied (403 in HeadObject)")


def archive_without(tmp_path: Path, archive: Path, left_out: str) -> Path:
    bad = tmp_path / f"without-{left_out}.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(bad, "w:gz") as target:
        for member in source.getmembers():
            if member.name != left_out:
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return bad


@pytest.fixture
def no_aws(monkeypatch):
    """Fails the test if a command reaches for an AWS session."""
    import data_prep.model_cli

    def reached(*args, **kwargs):
        raise AssertionError("an AWS session was made")

    monkeypatch.setattr(data_prep.model_cli, "aws_session", reached)


@pytest.mark.parametrize("left_out", ["model.onnx", "metadata.json"])
def test_an_archive_without_the_model_is_one_line_before_aws(archive, tmp_path, left_out, no_aws, monkeypatch,
                                                              capsys):
    bad = archive_without(tmp_path, archive, left_out)
    result = run_main(data_prep_main, ["deploy", "new", "--archive", str(bad), "--no-gate"], monkeypatch=monkeypatch,
                      capsys=capsys)
    assert (result.status, result.stderr_lines) == (2, [
        f"ArtefactError: {bad} is not a model archive: it has no {left_out} at its root (make one with "
        "`.venv/bin/python -m data_prep package`)"])


def test_a_folder_whose_onnx_file_is_not_its_metadatas_is_one_line_before_aws(tiny_model, tmp_path, no_aws,
                                                                              monkeypatch, capsys):
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_model, mixed)
    (mixed / "model.onnx").write_bytes((mixed / "model.onnx").read_bytes() + b"\0")
    actual = hashlib.sha256((mixed / "model.onnx").read_bytes()).hexdigest()
    recorded = json.loads((mixed / "metadata.json").read_text())["model_sha256"]
    for command in (["deploy", "new", "--model-dir", str(mixed), "--no-gate"],
                    ["package", "--model-dir", str(mixed), "--out", str(tmp_path / "m.tar.gz")]):
        result = run_main(data_prep_main, command, monkeypatch=monkeypatch, capsys=capsys)
        assert (result.status, result.stderr_lines) == (2, [
            f"ArtefactError: {mixed / 'model.onnx'} has sha256 {actual[:12]}..., but metadata.json records "
            f"{recorded[:12]}...: the folder mixes two models; train again"])
    assert not (tmp_path / "m.tar.gz").exists()


def test_a_job_not_made_by_our_trainer_is_refused_before_anything_is_created(s3, monkeypatch, capsys):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_training_job(
        TrainingJobName=JOB, RoleArn="arn:aws:iam::123456789012:role/R",
        AlgorithmSpecification={"TrainingImage": "image-classification", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 60})
    result = run_main(data_prep_main, ["deploy", "new", "--training-job", JOB, "--no-gate", "--role",
                                       "arn:aws:iam::123456789012:role/R", "--bucket", BUCKET],
                      monkeypatch=monkeypatch, capsys=capsys)
    assert result.status == 2 and len(result.stderr_lines) == 1
    assert result.stderr_lines[0].startswith(f"ArtefactError: training job {JOB} was not made by this project's "
                                             "trainer")
    assert sagemaker.list_models()["Models"] == [] and sagemaker.list_endpoint_configs()["EndpointConfigs"] == []


def test_evaluate_and_upload_baseline_read_an_archive_in_s3(tiny_model, s3, tmp_path, monkeypatch, capsys):
    from testkit.images import labelled_folder

    uri = f"s3://{BUCKET}/models/{JOB}/output/model.tar.gz"
    sha = sha256_file(tiny_model / "model.onnx")
    result = run_main(data_prep_main, ["evaluate", "--model", uri, "--baseline-model", str(tiny_model), "--data-dir",
                                       str(labelled_folder(tmp_path / "eval", per_class=4)), "--out",
                                       str(tmp_path / "gate.json"), "--resamples", "100", "--json"],
                      monkeypatch=monkeypatch, capsys=capsys)
    assert result.status == 0, result.stderr
    table = json.loads((tmp_path / "gate.json").read_text())
    packaged = package_model(tiny_model, tmp_path / "packaged.tar.gz")
    assert table["new_model"]["reference"] == uri and table["new_model"]["model_sha256"] == sha
    assert table["new_model"]["archive_sha256"] == packaged.archive_sha256  # the archive in S3, as it is
    assert table["baseline_model"] == {  # a folder is judged as the archive `package` writes for it
        "reference": str(tiny_model), "model_sha256": sha, "archive": None, "archive_sha256": packaged.archive_sha256,
        "code_sha256": packaged.code_sha256, "baseline_sha256": sha256_file(tiny_model / "baseline.json"),
        "packaged": "the archive `data_prep package` writes for this folder",
        "scored_by": "data_prep serve's Predictor (the archive's code/ is this repository's, byte for byte)"}
    uploaded = run_main(monitoring_main, ["upload-baseline", "--model", uri, "--bucket", BUCKET, "--key",
                                          "monitoring/baseline.json"], monkeypatch=monkeypatch, capsys=capsys)
    assert uploaded.status == 0, uploaded.stderr
    assert f"of model sha256 {sha}" in uploaded.stdout
    body = s3.get_object(Bucket=BUCKET, Key="monitoring/baseline.json")["Body"].read()
    assert body == (tiny_model / "baseline.json").read_bytes()


def test_reading_an_archive_refuses_paths_outside_its_folder(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        for name in ("model.onnx", "metadata.json", "../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArtefactError, match="is not a readable gzip-compressed tar archive"):
        resolve_model(evil, tmp_path / "work")
    assert not (tmp_path / "work" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_an_archive_made_with_tar_c_dot_is_read_as_sagemaker_reads_it(tiny_model, archive, tmp_path, monkeypatch,
                                                                       capsys):
    """`tar czf m.tar.gz -C dir .` writes ./model.onnx, ./code/inference.py ...: SageMaker loads it; so do we."""
    import subprocess

    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    dotted = tmp_path / "dotted.tar.gz"
    subprocess.run(["tar", "czf", str(dotted), "-C", str(unpacked), "."], check=True)
    with tarfile.open(dotted) as tar:
        assert "./model.onnx" in tar.getnames()
    model = resolve_model(dotted, tmp_path / "read")
    ours = resolve_model(archive, tmp_path / "ours")
    assert (model.sha256, model.code_sha256) == (ours.sha256, ours.code_sha256)
    result = run_main(data_prep_main, ["evaluate", "--model", str(dotted), "--baseline-model", str(tiny_model),
                                       "--data-dir", str(labelled_folder_for(tmp_path)), "--out",
                                       str(tmp_path / "gate.json"), "--resamples", "100"],
                      monkeypatch=monkeypatch, capsys=capsys)
    assert result.status == 0, result.stderr  # the same code/, byte for byte: scored by the Predictor


def labelled_folder_for(tmp_path: Path) -> Path:
    from testkit.images import labelled_folder

    return labelled_folder(tmp_path / "eval", per_class=4)


def test_a_file_that_is_not_gzip_is_one_line(tmp_path, monkeypatch, capsys):
    for name, content in (("plain.tar.gz", None), ("text.tar.gz", b"hello\n")):
        bad = tmp_path / name
        if content is None:  # a tar, not gzipped: SageMaker wants it compressed
            with tarfile.open(bad, "w") as tar:
                info = tarfile.TarInfo("model.onnx")
                tar.addfile(info, io.BytesIO(b""))
        else:
            bad.write_bytes(content)
        result = run_main(monitoring_main, ["upload-baseline", "--model", str(bad), "--bucket", BUCKET],
                          monkeypatch=monkeypatch, capsys=capsys)
        assert (result.status, result.stderr_lines) == (2, [
            f"ArtefactError: {bad} is not a readable gzip-compressed tar archive (.tar.gz, what SageMaker loads): "
            "not a gzip file"])


def test_training_binds_the_baseline_to_the_model_and_a_mixed_one_is_refused(tiny_model, tmp_path, monkeypatch,
                                                                             capsys):
    """Only model.onnx was bound to the sha256: a folder (or an archive) with another model's baseline.json passed
    every check, and the drift check compared traffic with the wrong model's training data."""
    metadata = json.loads((tiny_model / "metadata.json").read_text())
    baseline = json.loads((tiny_model / "baseline.json").read_text())
    assert baseline["model_sha256"] == metadata["model_sha256"]
    assert metadata["baseline_sha256"] == sha256_file(tiny_model / "baseline.json")
    edited = tmp_path / "edited"
    shutil.copytree(tiny_model, edited)
    (edited / "baseline.json").write_text(json.dumps({**baseline, "confidence": [0.5] * 10}))
    other = tmp_path / "other"  # another model's baseline, consistent with its own bytes: not this model's
    shutil.copytree(tiny_model, other)
    (other / "baseline.json").write_text(json.dumps({**baseline, "model_sha256": "ab" * 32}))
    (other / "metadata.json").write_text(json.dumps({**metadata,
                                                     "baseline_sha256": sha256_file(other / "baseline.json")}))
    edited_sha = sha256_file(edited / "baseline.json")
    expected = {
        edited: f"ArtefactError: {edited / 'baseline.json'} has sha256 {edited_sha[:12]}..., "
                f"but metadata.json records {metadata['baseline_sha256'][:12]}...: the folder mixes two models' "
                "baselines; train again",
        other: f"ArtefactError: {other / 'baseline.json'} describes model sha256 abababababab..., not this folder's "
               f"{metadata['model_sha256'][:12]}...: train again"}
    for folder, line in expected.items():
        result = run_main(data_prep_main, ["package", "--model-dir", str(folder), "--out", str(tmp_path / "m.tar.gz")],
                          monkeypatch=monkeypatch, capsys=capsys)
        assert (result.status, result.stderr_lines) == (2, [line])
        uploaded = run_main(monitoring_main, ["upload-baseline", "--model", str(folder), "--bucket", BUCKET],
                            monkeypatch=monkeypatch, capsys=capsys)
        assert (uploaded.status, uploaded.stderr_lines) == (2, [line])
