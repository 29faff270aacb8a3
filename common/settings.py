"""Shared values, each with one home.

The workflow's own settings live in template.yaml's parameter defaults (what `sam deploy` deploys
unless overridden) and samconfig.toml (the stack name and region `sam deploy` uses): they are read
from there, never copied. The rest are facts of this repository: where things are and the offline
stand-ins for an AWS account.
"""

from __future__ import annotations

import functools
import shlex
import tomllib
from pathlib import Path
from typing import Any

from common.cfn_yaml import load_template
from common.hints import VENV_PYTHON, hint  # noqa: F401 - one home (common.hints), read through settings too

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "scones-image-classification"  # pyproject.toml's project name
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
SAMCONFIG_PATH = REPO_ROOT / "samconfig.toml"
# The real CIFAR-100 bicycle/motorcycle images shipped beside the repository, when present.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "cifar100_bicycle_motorcycle"
SHARED_TRAIN_IMAGES = SHARED_DATA / "train"

# Offline, moto and the local services stand in for this account and region.
OFFLINE_ACCOUNT = "123456789012"
OFFLINE_REGION = "us-east-1"
OFFLINE_BUCKET = "scones-offline"

# The production variant a single-model endpoint serves from (SageMaker's default name).
DEFAULT_VARIANT = "AllTraffic"


@functools.cache
def template_parameter_defaults(path: Path = TEMPLATE_PATH) -> dict[str, str]:
    """Each template parameter's Default, as the string CloudFormation would pass."""
    parameters: dict[str, Any] = load_template(path).get("Parameters", {})
    return {name: str(spec["Default"]) for name, spec in parameters.items() if "Default" in spec}


def dataset_prefix() -> str:
    """The stack's DatasetPrefix as deployed (samconfig.toml's override, else the template's): where `python -m
    data_prep stage` puts the dataset in the bucket, and what reads it back (serialize-image may read its test/
    images, what `workflow start-executions` runs). A function, not a constant read at import: the training and
    inference code shipped to SageMaker imports this module without the template beside it."""
    return deployed_parameters()["DatasetPrefix"]


def staged_dataset_key(relative: str) -> str:
    """Where the offline runtime stages a dataset file (`test/<file>`, relative to the dataset folder), as `python -m
    data_prep stage` does on AWS: under the template's DatasetPrefix, the one place serialize-image's role may read
    test images from. The template's default, never samconfig.toml's override: the offline stack is deployed from
    the template alone (the user's deployment settings do not reach it), and its roles are built from that."""
    return f"{template_parameter_defaults()['DatasetPrefix']}/{relative}"


def confidence_threshold() -> float:
    """The template's ConfidenceThreshold: the filter's default, and what reports measure against."""
    return float(template_parameter_defaults()["ConfidenceThreshold"])


def class_names() -> list[str]:
    """The template's ClassNames, in the model's training order."""
    return [name.strip() for name in template_parameter_defaults()["ClassNames"].split(",")]


def target_precision() -> float:
    """The template's TargetPrecision: the precision confident decisions must reach (reports and checks measure
    against it)."""
    return float(template_parameter_defaults()["TargetPrecision"])


def low_confidence_alarm_rate() -> float:
    """The template's LowConfidenceAlarmRate: the share sent to review above which the alarm (and the report) call
    the model degraded."""
    return float(template_parameter_defaults()["LowConfidenceAlarmRate"])


def batch_prefix() -> str:
    """The template's BatchPrefix: batches lie under it (the batch machine's role lists nothing else)."""
    return template_parameter_defaults()["BatchPrefix"]


def endpoint_name() -> str:
    """The template's EndpointName: the SageMaker endpoint classify-image invokes."""
    return template_parameter_defaults()["EndpointName"]


@functools.cache
def samconfig(path: Path = SAMCONFIG_PATH) -> dict[str, Any]:
    """samconfig.toml's `default` environment, merged as `sam deploy` reads it (global, then deploy)."""
    if not path.is_file():
        return {}
    document = tomllib.loads(path.read_text()).get("default", {})
    merged: dict[str, Any] = {}
    for command in ("global", "deploy"):
        merged.update(document.get(command, {}).get("parameters", {}))
    return merged


def stack_name() -> str:
    """The stack `sam deploy` creates: samconfig.toml's stack_name."""
    return str(samconfig()["stack_name"])


def parse_parameter_overrides(text: str) -> dict[str, str]:
    """samconfig.toml's `parameter_overrides` (`Key="value" Other=value`, shell-quoted as `sam deploy` writes it)."""
    pairs = (item.partition("=") for item in shlex.split(text))
    return {key: value for key, sep, value in pairs if sep}


def deployed_parameters(path: Path = SAMCONFIG_PATH) -> dict[str, str]:
    """The stack's parameters as `sam deploy` passes them: the template's defaults, overridden by samconfig.toml's
    `parameter_overrides` (what `data_prep deploy new --update-samconfig` writes). The AWS commands' defaults."""
    overrides = samconfig(path).get("parameter_overrides", "")
    if isinstance(overrides, list):  # samconfig.toml also allows a list of "Key=value" strings
        overrides = " ".join(shlex.quote(str(item)) for item in overrides)
    return {**template_parameter_defaults(), **parse_parameter_overrides(str(overrides))}


def deployed_endpoint_name() -> str:
    """The EndpointName the deployed stack calls (samconfig.toml's override, else the template's default)."""
    return deployed_parameters()["EndpointName"]


def deployed_bucket() -> str | None:
    """samconfig.toml's DataBucketName when it names one; None means the SageMaker default bucket (as the stack)."""
    return deployed_parameters().get("DataBucketName") or None


@functools.cache
def package_version() -> str:
    """The installed package's version (`--version`); pyproject.toml's when the package is not installed."""
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
        return str(pyproject["project"]["version"])


class Layout:
    """The one artefact layout every command defaults to, under one folder (`out/` where commands run).

    Each step finds what the step before it wrote: `data_prep transform` writes `dataset/`,
    `data_prep train local` reads it and writes `model/`, `data_prep serve` serves that model and
    captures to `data_capture/`, `monitoring report` reads all three and writes `report/`. `workflow run`
    writes the same names (under `out/` too, unless `--out DIR`), so each command finds what the one before
    it wrote.
    """

    def __init__(self, root: Path = Path("out")) -> None:
        self.root = root
        self.cache = root / "cache"
        self.dataset = root / "dataset"
        self.model = root / "model"
        self.capture = root / "data_capture"
        self.report = root / "report"
        self.lambda_logs = root / "lambda-logs"
        self.summary = root / "summary.json"
        self.bucket = root / "bucket"  # the offline bucket, left on disk (review/, the images, labels/)
        self.loop = root / "loop"  # the closed loop's labels, retrained model and held-back images
        self.previous_model = root / "model.previous"  # the model a promoted one replaced in `model`
        self.batch_summary = root / "batch_summary.json"
        self.batch_results = root / "results.csv"  # classify-prefix: one row per object (key,label,...)
        self.run_log = root / "run.log"  # library warnings and logs of a run, kept off the terminal
        self.connection = root / "connection.txt"  # `workflow run --keep-running`: how to reach the services
        self.last_training_job = root / "sagemaker" / "last_training_job.txt"


DEFAULT_LAYOUT = Layout()
