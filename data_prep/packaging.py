"""What goes to SageMaker, built from this repository's own modules: the model archive and the training source.

- `package_model` (`python -m data_prep package`): `model.tar.gz` for SageMaker's PyTorch inference
  container, laid out as common.model_archive describes: the model folder's files at the root, and `code/`
  with `inference.py` (data_prep.serving.inference, copied), every module of ours it imports (found by
  common.source_tree, copied), and `requirements.txt` pinning what those modules import beyond what the
  container has (numpy, Pillow, its own toolkit) to the versions installed here, which the tests ran.
- `training_source`: the script-mode source directory (`sourcedir.tar.gz`) of the SageMaker training job:
  `sagemaker_train.py` (data_prep.training.sagemaker_entry, copied) at the root with every module of ours
  it imports, `requirements.txt` (the same rule, against the PyTorch training container: torch, numpy,
  Pillow, boto3 are there; onnx and onnxscript are added, torch.onnx.export needs them), and
  `inference_code/`: the archive's `code/` folder, which the entry point copies into SM_MODEL_DIR so the
  job's artefact is the same archive.

Nothing here is a hand-kept copy: every file is read from the repository when the archive is made.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.model_archive import (
    CODE_DIR,
    INFERENCE_SCRIPT,
    REQUIREMENTS_FILE,
    SHA256_KEY,
    model_files,
    verify_model_dir,
    write_tar_gz,
)
from common.source_tree import closure
from data_prep.training.sagemaker_entry import INFERENCE_CODE_DIR

INFERENCE_MODULE = "data_prep.serving.inference"
TRAINING_MODULE = "data_prep.training.sagemaker_entry"
TRAINING_PROGRAM = "sagemaker_train.py"
# What SageMaker's PyTorch containers already have (top-level import names): never reinstalled over theirs.
INFERENCE_CONTAINER_HAS = frozenset({"numpy", "PIL", "sagemaker_inference"})
TRAINING_CONTAINER_HAS = frozenset({"torch", "numpy", "PIL", "boto3", "botocore"})
EXPORT_NEEDS = ("onnx", "onnxscript")  # torch.onnx.export(dynamo=True) imports them; no import statement names them


class PackagingError(Exception):
    """A module imports a package that is not installed here, so its version cannot be pinned (a bug)."""


def requirements(imports: Iterable[str]) -> str:
    """requirements.txt pinning each top-level import's distribution to the version installed here."""
    distributions = importlib.metadata.packages_distributions()
    lines = set()
    for name in imports:
        found = distributions.get(name)
        if not found:
            raise PackagingError(f"{name} is imported by the shipped code but not installed here")
        dist = found[0]
        lines.add(f"{importlib.metadata.metadata(dist)['Name']}=={importlib.metadata.version(dist)}")
    return "".join(f"{line}\n" for line in sorted(lines, key=str.lower))


Files = dict[str, Path | bytes]  # name inside the archive -> a file to copy, or the content itself


def _shipped(root_module: str, program: str, container_has: frozenset[str], extra: Iterable[str] = ()) -> Files:
    """`root_module` as `program` at the top, the modules of ours it imports beside it, and requirements.txt."""
    found = closure([root_module])
    files: Files = {name: path for name, path in found.archive_names().items()
                    if path != found.files[root_module]}
    files[program] = found.files[root_module]
    files[REQUIREMENTS_FILE] = requirements((found.third_party - container_has) | set(extra)).encode()
    return files


def inference_code() -> Files:
    """The archive's code/ folder: inference.py, its modules, requirements.txt."""
    return _shipped(INFERENCE_MODULE, INFERENCE_SCRIPT, INFERENCE_CONTAINER_HAS)


def training_source() -> Files:
    """The training job's source directory (see the module docstring)."""
    files = _shipped(TRAINING_MODULE, TRAINING_PROGRAM, TRAINING_CONTAINER_HAS, EXPORT_NEEDS)
    files.update({f"{INFERENCE_CODE_DIR}/{name}": item for name, item in inference_code().items()})
    return files


@dataclass(frozen=True)
class Packaged:
    archive: Path
    archive_sha256: str
    model_sha256: str
    names: list[str]  # what the archive holds


def package_model(model_dir: Path, out: Path) -> Packaged:
    """Check the model folder (its ONNX file is the one its metadata records) and write the archive."""
    metadata = verify_model_dir(model_dir)
    files: Files = {path.name: path for path in model_files(model_dir, metadata)}
    files.update({f"{CODE_DIR}/{name}": item for name, item in inference_code().items()})
    digest = write_tar_gz(files.items(), out)
    return Packaged(out, digest, str(metadata[SHA256_KEY]), sorted(files))


def write_training_source(out: Path) -> str:
    """sourcedir.tar.gz of the training job; returns its sha256."""
    return write_tar_gz(training_source().items(), out)


def write_files(files: Files, folder: Path) -> None:
    """Lay `files` out under `folder` (tests run the training toolkit on such a folder)."""
    for name, item in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item if isinstance(item, bytes) else item.read_bytes())

