"""One artefact, checked with the toolkits SageMaker's PyTorch containers run.

- The training entry point under sagemaker-training (the /opt/ml layout in a temp folder, the hyperparameters of
  the CreateTrainingJob request, the source tarball `train sagemaker` uploads): it trains with `train local`'s
  code and leaves in SM_MODEL_DIR exactly the archive `data_prep package` writes for that model.
- The packaged hooks under sagemaker-inference's Transformer and the PyTorch container's HandlerService, in an
  interpreter that sees only code/, what code/requirements.txt names, numpy, Pillow and the toolkit: the same
  probabilities as `data_prep serve` on the dataset's test images, and the same refusals.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from common.model_archive import extract_archive, sha256_file, verify_model_dir
from data_prep.dataset.build import build_dataset
from data_prep.packaging import inference_code, package_model, write_training_source
from data_prep.serving.predictor import Predictor
from data_prep.training.config import TrainConfig
from data_prep.training.sagemaker_jobs import StagedData, TrainingJob
from testkit.images import bomb_png, labelled_folder, png_bytes
from testkit.sagemaker_containers import run_training_job, serve_isolated, site_with, training_layout

ONE_EPOCH = TrainConfig(members=2, epochs=1, batch_size=8, threads=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    build_dataset(labelled_folder(root / "images"), None, root / "dataset", 0.25)
    return root / "dataset"


@pytest.fixture(scope="module")
def trained_job(tmp_path_factory, dataset) -> Path:
    """/opt/ml after sagemaker-training ran the job `train sagemaker` would create."""
    root = tmp_path_factory.mktemp("job")
    job = TrainingJob(name="scones-test", role="arn:aws:iam::123456789012:role/R", region="us-east-1",
                      staged=StagedData("bucket", "scones-image-classification"), config=ONE_EPOCH, threshold=0.93)
    hyperparameters = job.request("image")["HyperParameters"]
    write_training_source(root / "sourcedir.tar.gz")
    hyperparameters["sagemaker_submit_directory"] = json.dumps(str(root / "sourcedir.tar.gz"))  # S3 in a real job
    base = training_layout(root / "ml", hyperparameters, {"train": dataset})
    result = run_training_job(base)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Reporting training SUCCESS" in result.stderr
    return base


def test_the_entry_point_runs_the_local_trainer_under_sagemaker_training(trained_job):
    model_dir = trained_job / "model"
    metadata = verify_model_dir(model_dir)  # model.onnx is the file metadata.json's sha256 names
    assert metadata["training"]["epochs"] == 1 and metadata["training"]["members"] == 2
    assert metadata["metrics"]["threshold"] == 0.93
    assert (trained_job / "output" / "success").is_file()
    program = trained_job / "code" / "sagemaker_train.py"  # unpacked by the toolkit from the source tarball
    assert program.read_bytes() == Path("data_prep/training/sagemaker_entry.py").read_bytes()


def test_the_jobs_model_folder_is_the_package_archive(trained_job, tmp_path):
    """SageMaker tars SM_MODEL_DIR into model.tar.gz: the same names and bytes `data_prep package` writes."""
    model_dir = trained_job / "model"
    packaged = package_model(model_dir, tmp_path / "model.tar.gz")
    in_job = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file())
    assert in_job == packaged.names
    with tarfile.open(packaged.archive) as archive:
        for name in packaged.names:
            member = archive.extractfile(name)
            assert member is not None and member.read() == (model_dir / name).read_bytes(), name


def test_archive_layout_and_reproducible_bytes(tiny_model, tmp_path):
    first = package_model(tiny_model, tmp_path / "a" / "model.tar.gz")
    second = package_model(tiny_model, tmp_path / "b" / "model.tar.gz")
    assert first.archive_sha256 == second.archive_sha256 == sha256_file(first.archive)
    assert first.model_sha256 == sha256_file(tiny_model / "model.onnx")
    assert {"model.onnx", "metadata.json", "baseline.json", "validation_report.json", "code/inference.py",
            "code/requirements.txt", "code/data_prep/serving/predictor.py", "code/imaging/preprocess.py"} \
        <= set(first.names)
    assert not any(name.startswith(("code/torch", "code/data_prep/training")) for name in first.names)
    assert (Path("data_prep/serving/inference.py").read_bytes()
            == tarfile.open(first.archive).extractfile("code/inference.py").read())  # type: ignore[union-attr]
    assert inference_code()["requirements.txt"] == b"".join(
        f"{name}=={metadata.version(name)}\n".encode()
        for name in ("flatbuffers", "numpy", "onnxruntime", "packaging", "pillow", "protobuf"))


def requests_for(images: list[bytes]) -> list[dict[str, str]]:
    return [{"content_type": "image/png", "body": base64.b64encode(body).decode()} for body in images]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory, tiny_model) -> Path:
    root = tmp_path_factory.mktemp("archive")
    package_model(tiny_model, root / "model.tar.gz")
    return extract_archive(root / "model.tar.gz", root / "opt-ml-model")


REAL_IMAGES = Path("../shared/data/cifar100_bicycle_motorcycle/train")  # beside the repository, where present
PY312 = Path(".venv-hooks312")  # make install-hooks312: Python 3.12 with only code/requirements.txt + the toolkit


@pytest.fixture(scope="module")
def images(dataset) -> list[bytes]:
    """Every real bicycle/motorcycle image when they are here (1,000), else the fixture dataset's test images."""
    found = sorted(REAL_IMAGES.glob("*/*.png")) if REAL_IMAGES.is_dir() else []
    return [path.read_bytes() for path in found or sorted((dataset / "test").glob("*.png"))]


def py312_site() -> tuple[str, Path]:
    python = PY312 / "bin" / "python"
    if not python.exists():
        pytest.skip("no .venv-hooks312: `make install-hooks312` builds it (`make test` and CI do)")
    return str(python), next((PY312 / "lib").glob("python3.12/site-packages"))


def installed_in(python: str) -> set[str]:
    """`name==version` of every distribution in `python`'s environment (pip freeze, normalised names)."""
    frozen = subprocess.run([python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True,
                            timeout=120).stdout.split()
    return {line.lower().replace("_", "-") for line in frozen}


@pytest.mark.parametrize("interpreter", ["this", "3.12"])
def test_hooks_answer_as_serve_with_only_their_requirements(interpreter, unpacked, images, tmp_path):
    """sagemaker-inference's Transformer over the packaged hooks, with nothing installed but code/requirements.txt
    and the toolkit: here (3.11), and under Python 3.12 as in SageMaker's PyTorch inference image, where the
    requirements were installed with --no-deps (the list is whole, or an import fails). Every image's
    probabilities equal `data_prep serve`'s (Predictor) within 1e-5; bad input gets the same refusals."""
    refused = [("text/csv", b"1,2,3"), ("image/png", b"not an image"), ("image/png", bomb_png())]
    requests = requests_for(images) + [{"content_type": kind, "body": base64.b64encode(body).decode()}
                                       for kind, body in refused]
    requirements = (unpacked / "code" / "requirements.txt").read_text().split()
    if interpreter == "3.12":
        python, site = py312_site()
        assert {line.lower() for line in requirements} <= installed_in(python)  # the exact pins, nothing newer
    else:
        python = None
        site = site_with(["sagemaker-inference", *(line.split("==")[0] for line in requirements)], tmp_path / "site")
    answers = serve_isolated("strict", unpacked, requests, site, tmp_path, python=python)
    assert len(answers) == len(images) + len(refused) + 1
    served = Predictor(unpacked)
    differences = []
    for body, answer in zip(images, answers, strict=False):
        assert answer["status"] == 200 and answer["content_type"] == "application/json"
        differences.append(float(np.max(np.abs(np.array(json.loads(answer["body"]))
                                                - served.predict(body, "image/png")))))
    assert len(differences) == len(images) and max(differences) <= 1e-5
    statuses = [answer["status"] for answer in answers[len(images):len(images) + 3]]
    assert statuses == [415, 400, 413]
    imported = answers[-1]
    assert imported["python"] == ("3.12" if interpreter == "3.12" else f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert "torch" not in imported["imported"] and "onnx" not in imported["imported"]
    assert all(str(unpacked / "code") in path for path in imported["paths"].values())  # the shipped copies ran


def test_requirements_pin_the_whole_closure_the_hooks_run_on(unpacked):
    """code/requirements.txt names every distribution its imports need, transitively (for Python 3.12 on Linux),
    each pinned to the version the tests ran, except the container's own inference toolkit."""
    pinned = dict(line.split("==") for line in (unpacked / "code" / "requirements.txt").read_text().split())
    assert pinned == {"flatbuffers": metadata.version("flatbuffers"), "numpy": metadata.version("numpy"),
                      "onnxruntime": metadata.version("onnxruntime"), "packaging": metadata.version("packaging"),
                      "pillow": metadata.version("pillow"), "protobuf": metadata.version("protobuf")}


def test_hooks_under_the_pytorch_containers_handler_service(unpacked, tmp_path):
    bodies = [png_bytes(32, 32, seed=seed) for seed in range(3)] + [png_bytes(640, 480, seed=9)]
    requirements = (unpacked / "code" / "requirements.txt").read_text().split()
    site = site_with(["numpy", "pillow", "torch", "sagemaker-pytorch-inference",
                      *(line.split("==")[0] for line in requirements)], tmp_path / "site")
    answers = serve_isolated("container", unpacked, requests_for(bodies), site, tmp_path)
    served = Predictor(unpacked)
    for body, answer in zip(bodies, answers, strict=False):
        assert answer["status"] == 200
        assert json.loads(answer["body"]) == served.predict(body, "image/png")
