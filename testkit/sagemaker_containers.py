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


def run_training_job(base: Path, *, python: str | None = None,
                     timeout: float = 600) -> subprocess.CompletedProcess[str]:
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


def _requirement_names(distribution: str) -> list[str]:
    """The distributions `distribution` requires (no extras; markers evaluated for this interpreter)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    names = []
    for text in metadata.requires(distribution) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


def site_with(distributions: list[str], dest: Path) -> Path:
    """A site-packages folder holding only `distributions` and what they require (links to the installed files):
    what a container has when only those are installed. The rest of this environment stays out of reach."""
    from importlib import metadata

    dest.mkdir(parents=True, exist_ok=True)
    pending, seen = list(distributions), set()
    while pending:
        name = pending.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        found = metadata.distribution(name)
        pending += _requirement_names(name)
        for entry in {Path(str(file)).parts[0] for file in found.files or []}:
            source = Path(str(found.locate_file(entry)))
            if entry.endswith(".pth") or entry in {"..", "bin"} or not source.exists():
                continue
            target = dest / entry
            if not target.exists():
                target.symlink_to(source)
    return dest


def serve_isolated(mode: str, model_dir: Path, requests: list[dict[str, str]], site: Path,
                   scratch: Path, *, python: str | None = None) -> list[dict[str, Any]]:
    """Each request (`content_type`, base64 `body`) through the inference toolkit in a fresh interpreter (`python`,
    default this one) that sees only the standard library, `site` (see site_with, or another interpreter's
    site-packages) and the archive's code/ folder; the answers, then a last line saying which of our modules and
    heavy packages were imported, from where, and the interpreter's version."""
    driver = scratch / "driver.py"
    shutil.copyfile(__file__, driver)  # run from a folder of its own: nothing of this repository on sys.path
    (scratch / "requests.json").write_text(json.dumps(requests))
    result = subprocess.run([python or sys.executable, "-I", "-S", str(driver), mode, str(model_dir),
                             str(scratch / "requests.json"), str(site)], capture_output=True, text=True, timeout=300,
                            check=False, env={"PATH": os.environ.get("PATH", ""), "HOME": str(scratch)})
    if result.returncode != 0:
        raise AssertionError(f"the inference toolkit failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _serve(mode: str, model_dir: str, requests_file: str, site: str) -> None:
    """The driver serve_isolated runs: `strict` is sagemaker-inference's Transformer with its default handler
    (no torch); `container` the PyTorch container's HandlerService."""
    import base64

    sys.path[:0] = [str(Path(model_dir) / "code"), site]  # code/: what the model server puts on PYTHONPATH
    if mode == "strict":
        from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
        from sagemaker_inference.transformer import Transformer

        service: Any = Transformer(default_inference_handler=DefaultInferenceHandler())
        handle = service.transform
    else:
        from sagemaker_pytorch_serving_container.handler_service import HandlerService

        service = HandlerService()
        handle = None
    for request in json.loads(Path(requests_file).read_text()):
        context = InferenceContext(model_dir, {"Content-Type": request["content_type"], "Accept": "application/json"})
        if handle is None:
            service.initialize(context)
            handle = service.handle
        answer = handle([{"body": base64.b64decode(request["body"])}], context)[0]
        body = answer.decode() if isinstance(answer, bytes) else str(answer)
        print(json.dumps({"status": context.status[0] if context.status else 200,
                          "content_type": context.content_types.get(0), "body": body}), flush=True)
    print(json.dumps({"imported": sorted(name for name in ("torch", "onnx", "onnxscript", "common", "data_prep",
                                                           "imaging") if name in sys.modules),
                      "paths": {name: getattr(sys.modules[name], "__file__", "") for name in ("data_prep", "imaging")
                                if name in sys.modules},
                      "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}))


if __name__ == "__main__":
    _serve(*sys.argv[1:5])
