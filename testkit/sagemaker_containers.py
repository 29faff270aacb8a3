"""Run our entry points the way SageMaker's PyTorch containers do, with the toolkits those containers run.

- `run_training_job`: the `/opt/ml` layout of a training container in a folder (hyperparameters.json,
  inputdataconfig.json, resourceconfig.json, input/data/<channel>/), then sagemaker-training's own `train`
  (the console script the containers start), with SAGEMAKER_BASE_DIR pointing at the folder: the toolkit
  unpacks `sagemaker_submit_directory`, installs its requirements.txt, and runs `sagemaker_program` with the
  hyperparameters as arguments and the SM_* variables, as in a real job. The hyperparameters are the ones a
  CreateTrainingJob request carries, with the source tarball's S3 URI replaced by a local path (the toolkit
  reads either).
- `InferenceContext`: the request context sagemaker-inference's Transformer is called with by the model server
  (system properties with `model_dir`, request headers, the response's status and content type).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def training_layout(base: Path, hyperparameters: dict[str, str], channels: dict[str, Path]) -> Path:
    """`base` laid out as /opt/ml is in a training container (the channels' files copied in)."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (base / "model").mkdir(parents=True, exist_ok=True)
    (base / "output" / "data").mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({
        name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        for name in channels}))
    host = socket.gethostname()  # resolvable here, as algo-1 is in a job (the toolkit waits for its hosts' DNS)
    (config / "resourceconfig.json").write_text(json.dumps({
        "current_host": host, "hosts": [host], "current_instance_group": "homogeneousCluster",
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.xlarge",
                             "hosts": [host]}]}))
    for name, source in channels.items():
        shutil.copytree(source, base / "input" / "data" / name)
    return base


def run_training_job(base: Path, *, python: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """sagemaker-training's `train` on the layout at `base` (see training_layout), in `python`'s environment."""
    environment = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                   "PIP_NO_INDEX": "1"}  # requirements.txt must already be satisfied: nothing is downloaded
    for name in list(environment):
        if name.startswith("SM_") or name == "PYTHONPATH":
            del environment[name]
    command = [python or sys.executable, "-c", "from sagemaker_training.cli.train import main; main()"]
    return subprocess.run(command, env=environment, cwd=base, capture_output=True, text=True, timeout=timeout,
                          check=False)


@dataclass
class _RequestProcessor:
    headers: dict[str, str]

    def get_request_properties(self) -> dict[str, str]:
        return self.headers


@dataclass
class InferenceContext:
    """What the model server hands sagemaker-inference's Transformer for one request."""

    model_dir: str
    headers: dict[str, str]
    status: tuple[int, str] | None = None
    content_types: dict[int, str] = field(default_factory=dict)

    @property
    def system_properties(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "gpu_id": None}

    @property
    def request_processor(self) -> list[_RequestProcessor]:
        return [_RequestProcessor(self.headers)]

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = (code, phrase)

    def set_response_content_type(self, index: int, value: str) -> None:
        self.content_types[index] = value
