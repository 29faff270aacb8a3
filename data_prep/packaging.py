"""What goes to SageMaker, built from this repository's own modules: the model archive and the training source.

- `package_model` (`python -m data_prep package`): `model.tar.gz` for SageMaker's PyTorch inference
  container, laid out as common.model_archive describes: the model folder's files at the root, and `code/`
  with `inference.py` (data_prep.serving.inference, copied), every module of ours it imports (found by
  common.source_tree, copied), and `requirements.txt` pinning what those modules import beyond the container's
  own toolkit, and everything that requires in turn (onnxruntime's numpy, protobuf, flatbuffers, packaging; and
  Pillow, whose resampling decides the pixels), to the versions installed here, which the tests ran (under
  Python 3.12 too, with only those installed: tests/integration/test_inference_code_py312.py).
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

from common.artefacts import ArtefactError
from common.model_archive import (
    CODE_DIR,
    INFERENCE_SCRIPT,
    REQUIREMENTS_FILE,
    SHA256_KEY,
    ResolvedModel,
    model_files,
    tree_files,
    tree_sha256,
    verify_model_dir,
    write_tar_gz,
)
from common.source_tree import closure
from data_prep.training.config import INFERENCE_CODE_DIR

INFERENCE_MODULE = "data_prep.serving.inference"
TRAINING_MODULE = "data_prep.training.sagemaker_entry"
TRAINING_PROGRAM = "sagemaker_train.py"
# What SageMaker's PyTorch containers have and we leave them (top-level import names): never reinstalled over theirs.
# The inference code pins everything else it runs on, numpy and Pillow included: the answers depend on them.
INFERENCE_CONTAINER_HAS = frozenset({"sagemaker_inference"})
TRAINING_CONTAINER_HAS = frozenset({"torch", "numpy", "PIL", "boto3", "botocore"})
# Requirement markers are evaluated for the containers (data_prep.training.sagemaker_jobs.PYTHON_VERSION, Linux).
CONTAINER_MARKERS = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
                     "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                     "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
EXPORT_NEEDS = ("onnx", "onnxscript")  # torch.onnx.export(dynamo=True) imports them; no import statement names them


class PackagingError(Exception):
    """A module imports a package that is not installed here, so its version cannot be pinned (a bug)."""


def _distribution(name: str) -> str:
    return importlib.metadata.metadata(name)["Name"]


def _required(distribution: str) -> list[str]:
    """The distributions `distribution` requires in the container (markers evaluated for it; no extras)."""
    from packaging.requirements import Requirement

    found = []
    for text in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(CONTAINER_MARKERS):
            found.append(requirement.name)
    return found


def requirements(imports: Iterable[str], container_has: Iterable[str] = ()) -> str:
    """requirements.txt pinning each top-level import's distribution, and every distribution those require in
    turn, to the version installed here: the whole set the code ran on, so `pip install --no-deps -r` is enough.
    Distributions that provide `container_has` (import names) are the container's: neither pinned nor followed."""
    distributions = importlib.metadata.packages_distributions()
    theirs = {_distribution(dist).lower() for name in container_has for dist in distributions.get(name, [])}
    pending = []
    for name in imports:
        found = distributions.get(name)
        if not found:
            raise PackagingError(f"{name} is imported by the shipped code but not installed here")
        pending.append(found[0])
    lines: dict[str, str] = {}
    while pending:
        wanted = pending.pop()
        try:
            dist = _distribution(wanted)
        except importlib.metadata.PackageNotFoundError as error:
            raise PackagingError(f"{wanted} is required by the shipped code's packages but not installed here, so "
                                 "its version cannot be pinned") from error
        if dist.lower() in lines or dist.lower() in theirs:
            continue
        lines[dist.lower()] = f"{dist}=={importlib.metadata.version(dist)}"
        pending += _required(dist)
    return "".join(f"{lines[key]}\n" for key in sorted(lines))


Files = dict[str, Path | bytes]  # name inside the archive -> a file to copy, or the content itself


def _shipped(root_module: str, program: str, container_has: frozenset[str], extra: Iterable[str] = ()) -> Files:
    """`root_module` as `program` at the top, the modules of ours it imports beside it, and requirements.txt."""
    found = closure([root_module])
    files: Files = {name: path for name, path in found.archive_names().items()
                    if path != found.files[root_module]}
    files[program] = found.files[root_module]
    files[REQUIREMENTS_FILE] = requirements((found.third_party - container_has) | set(extra), container_has).encode()
    return files


def inference_code() -> Files:
    """The archive's code/ folder: inference.py, its modules, requirements.txt."""
    return _shipped(INFERENCE_MODULE, INFERENCE_SCRIPT, INFERENCE_CONTAINER_HAS)


def training_source() -> Files:
    """The training job's source directory (see the module docstring)."""
    files = _shipped(TRAINING_MODULE, TRAINING_PROGRAM, TRAINING_CONTAINER_HAS, EXPORT_NEEDS)
    files.update({f"{INFERENCE_CODE_DIR}/{name}": item for name, item in inference_code().items()})
    return files


def _bytes(files: Files) -> dict[str, bytes]:
    return {name: item if isinstance(item, bytes) else item.read_bytes() for name, item in files.items()}


def inference_code_sha256() -> str:
    """The code/ folder `package` writes now, as one digest (common.model_archive.tree_sha256)."""
    return tree_sha256(_bytes(inference_code()))


class ForeignCodeError(ArtefactError):
    """An archive's code/ is not what this repository's `package` writes: what it answers was never scored (exit 2)."""


def code_differences(code_dir: Path) -> list[str]:
    """The files in `code_dir` (an unpacked archive's code/) that differ from what `package` writes now, byte for
    byte: changed, missing (`-name`) or extra (`+name`). Empty: the code is this repository's."""
    ours, theirs = _bytes(inference_code()), tree_files(code_dir) if code_dir.is_dir() else {}
    changed = [name for name in sorted(ours) if name in theirs and theirs[name] != ours[name]]
    return (changed + [f"-{name}" for name in sorted(set(ours) - set(theirs))]
            + [f"+{name}" for name in sorted(set(theirs) - set(ours))])


def require_our_code(model: ResolvedModel, remedy: str) -> None:
    """ForeignCodeError naming the files when `model` is an archive whose code/ is not this repository's."""
    if model.archive is None:
        return  # a folder: `package` adds this repository's code/
    differences = code_differences(model.code_dir)
    if differences:
        shown = ", ".join(f"code/{name}" if name[0] not in "+-" else f"{name[0]}code/{name[1:]}"
                          for name in differences[:4])
        more = f" and {len(differences) - 4} more" if len(differences) > 4 else ""
        raise ForeignCodeError(f"{model.reference}: its code/ is not what this repository's `package` writes "
                               f"({shown}{more} differ): {remedy}")


@dataclass(frozen=True)
class Packaged:
    archive: Path
    archive_sha256: str
    model_sha256: str
    names: list[str]  # what the archive holds
    code_sha256: str = ""  # its code/ folder (common.model_archive.tree_sha256)


def package_model(model_dir: Path, out: Path) -> Packaged:
    """Check the model folder (its ONNX file and baseline are the ones its metadata records) and write the
    archive."""
    metadata = verify_model_dir(model_dir)
    files: Files = {path.name: path for path in model_files(model_dir, metadata)}
    code = inference_code()
    files.update({f"{CODE_DIR}/{name}": item for name, item in code.items()})
    digest = write_tar_gz(files.items(), out)
    return Packaged(out, digest, str(metadata[SHA256_KEY]), sorted(files), tree_sha256(_bytes(code)))


def write_training_source(out: Path) -> str:
    """sourcedir.tar.gz of the training job; returns its sha256."""
    return write_tar_gz(training_source().items(), out)


def write_files(files: Files, folder: Path) -> None:
    """Lay `files` out under `folder` (tests run the training toolkit on such a folder)."""
    for name, item in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item if isinstance(item, bytes) else item.read_bytes())

