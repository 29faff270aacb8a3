"""A model's identity (the sha256 of its ONNX file), its archive, and where any command finds it.

A model is the same bytes at every step: `train` writes `model.onnx` and records its sha256 in
`metadata.json` (`model_sha256`); `package` puts the folder's files at the root of `model.tar.gz`
(what SageMaker's PyTorch inference container loads, with `code/`); the SageMaker training job writes
that same layout as its artefact; `deploy` records the sha256 on the SageMaker model; and `evaluate`,
`monitoring upload-baseline` and `monitoring report` read whichever form they are given and check it.

Archive layout (model.tar.gz):
    model.onnx, metadata.json, baseline.json, validation_report.json   the model folder's files, at the root
    code/inference.py        model_fn, input_fn, predict_fn, output_fn (data_prep.serving.inference)
    code/requirements.txt    what the hooks need beyond the container's numpy and Pillow
    code/<package>/...       the repository's modules the hooks import, copied when packaging

A model reference (what `--model` takes): a model folder, a `.tar.gz` archive, `s3://.../model.tar.gz`, or
the name of a SageMaker training job this project's trainer ran. Each is checked before it is used: the
archive holds model.onnx and metadata.json, and the ONNX file's sha256 is the one its metadata records.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import re
import shutil
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from common.artefacts import (
    BASELINE_FILE,
    METADATA_FILE,
    ArtefactError,
    check_model_dir,
    is_s3_uri,
    parse_s3_uri,
    write_baseline,
)

MODEL_FILE = "model.onnx"
REPORT_FILE = "validation_report.json"
SHA256_KEY = "model_sha256"  # metadata.json: the sha256 of the ONNX file; baseline.json: the model it describes
BASELINE_SHA256_KEY = "baseline_sha256"  # metadata.json: the sha256 of baseline.json (the drift baseline's bytes)
CODE_DIR = "code"
INFERENCE_SCRIPT = "inference.py"
REQUIREMENTS_FILE = "requirements.txt"
ARCHIVE_SUFFIX = ".tar.gz"
# Tags and environment variables on the SageMaker model: which bytes serve (DescribeModel reads them back).
MODEL_SHA256_ENV = "SCONES_MODEL_SHA256"
ARCHIVE_SHA256_ENV = "SCONES_ARCHIVE_SHA256"
MODEL_VERSION_ENV = "SCONES_MODEL_VERSION"
TRAINER_TAG = "scones:trainer"  # on training jobs this project's trainer runs (with the hyperparameter below)
TRAINER_HYPERPARAMETER = "scones_trainer"
TRAINER_NAME = "scones-image-classification"
# SageMaker's resource names: 1-63 letters, digits and hyphens (CreateTrainingJob's TrainingJobName).
JOB_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
HASH_CHUNK = 1 << 20
ARCHIVE_NAME_IN_WORKDIR = "model.tar.gz"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model_dir(model_dir: Path) -> dict[str, Any]:
    """The model's metadata, after checking its files (check_model_dir) and that they are one model: the ONNX file
    is the one the metadata describes (its sha256 recorded at training, `model_sha256`), and so is baseline.json
    (metadata.json records its sha256, `baseline_sha256`, and it names the model's `model_sha256`)."""
    metadata = check_model_dir(model_dir)
    recorded = metadata.get(SHA256_KEY)
    if not isinstance(recorded, str) or not recorded:
        raise ArtefactError(f"{model_dir / METADATA_FILE} records no {SHA256_KEY} (a model trained before models "
                            "carried their sha256): train it again")
    actual = sha256_file(model_dir / str(metadata["model_file"]))
    if actual != recorded:
        raise ArtefactError(f"{model_dir / str(metadata['model_file'])} has sha256 {actual[:12]}..., but "
                            f"{METADATA_FILE} records {recorded[:12]}...: the folder mixes two models; train again")
    check_baseline_binding(model_dir, metadata)
    return metadata


def baseline_model_sha256(baseline: Any) -> str | None:
    """The model a parsed baseline.json describes (its `model_sha256`), or None when it names none."""
    named = baseline.get(SHA256_KEY) if isinstance(baseline, dict) else None
    return named if isinstance(named, str) and named else None


def check_baseline_binding(model_dir: Path, metadata: dict[str, Any]) -> None:
    """baseline.json is this model's: metadata.json records its sha256 and it names the model's sha256."""
    path = model_dir / BASELINE_FILE
    recorded = metadata.get(BASELINE_SHA256_KEY)
    if not isinstance(recorded, str) or not recorded:
        raise ArtefactError(f"{model_dir / METADATA_FILE} records no {BASELINE_SHA256_KEY} (a model trained before "
                            "its drift baseline was bound to it): train it again")
    actual = sha256_file(path)
    if actual != recorded:
        raise ArtefactError(f"{path} has sha256 {actual[:12]}..., but {METADATA_FILE} records {recorded[:12]}...: "
                            "the folder mixes two models' baselines; train again")
    named = baseline_model_sha256(json.loads(path.read_bytes()))
    if named != metadata[SHA256_KEY]:
        raise ArtefactError(f"{path} describes model sha256 {str(named)[:12]}..., not this folder's "
                            f"{str(metadata[SHA256_KEY])[:12]}...: train again")


def bind_baseline(model_dir: Path, baseline: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """Write baseline.json naming the model (metadata's `model_sha256`) and return the metadata with the baseline's
    sha256 (`baseline_sha256`), to be written: the two files then vouch for each other (verify_model_dir)."""
    write_baseline(model_dir, {**baseline, SHA256_KEY: metadata[SHA256_KEY]})
    return {**metadata, BASELINE_SHA256_KEY: sha256_file(model_dir / BASELINE_FILE)}


def model_files(model_dir: Path, metadata: dict[str, Any]) -> list[Path]:
    """The files that make the model (what goes at the archive's root): metadata, ONNX file, baseline, report."""
    names = [METADATA_FILE, str(metadata["model_file"]), BASELINE_FILE, REPORT_FILE]
    return [model_dir / name for name in names if (model_dir / name).is_file()]


def _tar_info(name: str, size: int, *, directory: bool = False, executable: bool = False) -> tarfile.TarInfo:
    """A member with fixed owner, mode and time: the same files give the same archive bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if directory or executable else 0o644
    if directory:
        info.type = tarfile.DIRTYPE
    return info


def write_tar_gz(files: Iterable[tuple[str, Path | bytes]], out: Path) -> str:
    """A gzipped tar of (name in the archive, a file or the content) pairs, reproducible byte for byte; returns
    its sha256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories: set[str] = set()
        for name, item in sorted(files, key=lambda pair: pair[0]):
            parents = Path(name).parents
            for parent in reversed([str(p) for p in parents if str(p) != "."]):
                if parent not in directories:
                    directories.add(parent)
                    tar.addfile(_tar_info(parent, 0, directory=True))
            data = item if isinstance(item, bytes) else item.read_bytes()
            tar.addfile(_tar_info(name, len(data)), io.BytesIO(data))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    with partial.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
        zipped.write(buffer.getvalue())
    partial.replace(out)
    return sha256_file(out)


def member_name(name: str) -> str:
    """A member's path as it lands under the folder: `./model.onnx` (what `tar czf m.tar.gz -C dir .` writes, and
    SageMaker loads) is `model.onnx`; the archive's own root (`.`, `./`) is `.`."""
    return posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."


def extract_archive(archive: Path, dest: Path) -> Path:
    """Unpack a gzipped model archive into `dest` (links and paths outside it refused) and check it is one."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            names = {member_name(name) for name in tar.getnames()}
            missing = [name for name in (MODEL_FILE, METADATA_FILE) if name not in names]
            if missing:
                raise ArtefactError(f"{archive} is not a model archive: it has no {' and no '.join(missing)} at its "
                                    "root (make one with `.venv/bin/python -m data_prep package`)")
            dest.mkdir(parents=True, exist_ok=True)
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        if isinstance(error, FileNotFoundError):
            raise ArtefactError(f"{archive} does not exist") from error
        reason = (str(error).splitlines() or [""])[0].strip() or type(error).__name__
        raise ArtefactError(f"{archive} is not a readable gzip-compressed tar archive (.tar.gz, what SageMaker "
                            f"loads): {reason}") from error
    return dest


def tree_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its path inside it (`data_prep/serving/predictor.py`), with its bytes."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


def tree_sha256(files: dict[str, bytes]) -> str:
    """One sha256 for a set of files: of the lines `<sha256 of the file>  <path>`, sorted by path (what
    `sha256sum` prints for them, sorted): the same files give the same digest, whatever archive holds them."""
    lines = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference made local: the folder with its files, and the bytes it is."""

    reference: str  # what was given
    model_dir: Path
    sha256: str  # of the ONNX file (metadata.json's model_sha256, checked)
    archive: str | None = None  # the archive's location (a path or s3:// URI) when one was read
    archive_sha256: str | None = None
    metadata: dict[str, Any] | None = None
    local_archive: Path | None = None  # the archive's bytes on this machine (a download of an s3:// one): checked
    code_sha256: str | None = None  # the archive's code/ folder (tree_sha256); None: a folder, or no code/

    @property
    def code_dir(self) -> Path:
        return self.model_dir / CODE_DIR

    def describe(self) -> dict[str, Any]:
        return {"reference": self.reference, "model_sha256": self.sha256, "archive": self.archive,
                "archive_sha256": self.archive_sha256, "code_sha256": self.code_sha256,
                "baseline_sha256": (self.metadata or {}).get(BASELINE_SHA256_KEY)}


def is_archive(reference: str | Path) -> bool:
    return str(reference).endswith(ARCHIVE_SUFFIX)


def download_archive(s3: Any, uri: str, dest: Path) -> Path:
    """s3://bucket/key.tar.gz to `dest`; a missing object is named (exit 2), a refused one is AWS's (exit 3)."""
    from botocore.exceptions import ClientError

    location = parse_s3_uri(uri)
    try:
        s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}:
            raise ArtefactError(f"{uri} does not exist ({code})") from error
        raise
    dest.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(location.bucket, location.key, str(dest))
    return dest


def training_job_artifact(sagemaker: Any, job_name: str) -> str:
    """The s3:// model artefact of a completed training job that this project's trainer ran (refused otherwise)."""
    from botocore.exceptions import ClientError

    try:
        job = sagemaker.describe_training_job(TrainingJobName=job_name)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == "ValidationException":
            raise ArtefactError(f"{job_name!r} is not a model folder, a .tar.gz, an s3:// URI nor a training job "
                                f"({error.response['Error'].get('Message', '')})") from error
        raise
    status = job.get("TrainingJobStatus")
    if status != "Completed":
        raise ArtefactError(f"training job {job_name} is {status}, not Completed: it has no model to read")
    hyperparameters = job.get("HyperParameters") or {}
    if hyperparameters.get(TRAINER_HYPERPARAMETER, "").strip('"') != TRAINER_NAME:
        raise ArtefactError(f"training job {job_name} was not made by this project's trainer (no "
                            f"{TRAINER_HYPERPARAMETER} hyperparameter): its artefact is not a model archive we can "
                            "check; train with `.venv/bin/python -m data_prep train sagemaker`")
    return str(job["ModelArtifacts"]["S3ModelArtifacts"])


def resolve_model(reference: str | Path, workdir: Path, *, s3: Any = None, sagemaker: Any = None) -> ResolvedModel:
    """Any model reference as a checked local folder (see the module docstring). `s3`/`sagemaker` clients are
    needed only for an s3:// URI or a training job name; `workdir` receives downloads and unpacked archives."""
    text = str(reference)
    path = Path(text)
    if not is_s3_uri(text) and path.is_dir():
        metadata = verify_model_dir(path)
        return ResolvedModel(text, path, str(metadata[SHA256_KEY]), metadata=metadata)
    if not is_s3_uri(text) and (is_archive(text) or path.is_file()):
        if not path.is_file():
            raise ArtefactError(f"{path} does not exist")
        return _from_archive(text, path, workdir)
    if is_s3_uri(text):
        if s3 is None:
            raise ArtefactError(f"{text}: reading an archive from S3 needs an AWS session")
        local = download_archive(s3, text, workdir / "download" / ARCHIVE_NAME_IN_WORKDIR)
        return _from_archive(text, local, workdir)
    if JOB_NAME_PATTERN.fullmatch(text) and not path.exists():
        if sagemaker is None or s3 is None:
            raise ArtefactError(f"{text}: reading a training job's model needs an AWS session")
        uri = training_job_artifact(sagemaker, text)
        local = download_archive(s3, uri, workdir / "download" / ARCHIVE_NAME_IN_WORKDIR)
        return replace(_from_archive(uri, local, workdir), reference=text)
    raise ArtefactError(f"{text} is not a model folder, a .tar.gz archive, an s3:// URI nor a training job name")


def _from_archive(where: str, archive: Path, workdir: Path) -> ResolvedModel:
    target = workdir / "model"
    if target.exists():
        shutil.rmtree(target)
    extract_archive(archive, target)
    metadata = verify_model_dir(target)
    code = target / CODE_DIR
    code_sha256 = tree_sha256(tree_files(code)) if code.is_dir() else None
    return ResolvedModel(where, target, str(metadata[SHA256_KEY]), where, sha256_file(archive), metadata,
                         local_archive=archive, code_sha256=code_sha256)
