"""Shared values, each with one home.

The workflow's own settings live in template.yaml's parameter defaults (what `sam deploy` deploys
unless overridden) and samconfig.toml (the stack name and region `sam deploy` uses): they are read
from there, never copied. The rest are facts of this repository: where things are and the offline
stand-ins for an AWS account.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

from common.cfn_yaml import load_template

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
SAMCONFIG_PATH = REPO_ROOT / "samconfig.toml"
# The real CIFAR-100 bicycle/motorcycle images shipped beside the repository, when present.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "cifar100_bicycle_motorcycle"
SHARED_TRAIN_IMAGES = SHARED_DATA / "train"

# Offline, moto and the local services stand in for this account and region.
OFFLINE_ACCOUNT = "123456789012"
OFFLINE_REGION = "us-east-1"
OFFLINE_BUCKET = "scones-offline"

# Where `python -m data_prep stage` puts the dataset in the bucket, and what reads it back.
DATASET_PREFIX = "scones-image-classification"
# The production variant a single-model endpoint serves from (SageMaker's default name).
DEFAULT_VARIANT = "AllTraffic"


@functools.cache
def template_parameter_defaults(path: Path = TEMPLATE_PATH) -> dict[str, str]:
    """Each template parameter's Default, as the string CloudFormation would pass."""
    parameters: dict[str, Any] = load_template(path).get("Parameters", {})
    return {name: str(spec["Default"]) for name, spec in parameters.items() if "Default" in spec}


def confidence_threshold() -> float:
    """The template's ConfidenceThreshold: the filter's default, and what reports measure against."""
    return float(template_parameter_defaults()["ConfidenceThreshold"])


def class_names() -> list[str]:
    """The template's ClassNames, in the model's training order."""
    return [name.strip() for name in template_parameter_defaults()["ClassNames"].split(",")]


def low_confidence_alarm_rate() -> float:
    """The template's LowConfidenceAlarmRate: the share sent to review above which the alarm (and the report) call
    the model degraded."""
    return float(template_parameter_defaults()["LowConfidenceAlarmRate"])


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


class Layout:
    """The one artefact layout every command defaults to, under one folder (`out/` where commands run).

    Each step finds what the step before it wrote: `data_prep transform` writes `dataset/`,
    `data_prep train --local` reads it and writes `model/`, `data_prep serve` serves that model and
    captures to `data_capture/`, `monitoring report` reads all three. `workflow run --out DIR` writes
    the same names under DIR.
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
        self.batch_summary = root / "batch_summary.json"
        self.last_training_job = root / "sagemaker" / "last_training_job.txt"


DEFAULT_LAYOUT = Layout()
