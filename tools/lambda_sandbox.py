"""Run what `sam build` produced as the Lambda python3.12 runtime would, to check the artefacts themselves.

The tests import the handlers from the source tree with every dev dependency installed, which says
nothing about the packages `sam build` writes to .aws-sam/build: a dependency missing from a
requirements.txt, a layer without its package, or a module that only imports on Python 3.11 would
all pass there and fail in Lambda. Here each built function runs in a python3.12 subprocess whose
sys.path holds only what Lambda gives it, in Lambda's order: the function's folder (/var/task), its
layers' `python/` folders (/opt/python), and boto3 with botocore (the runtime's /var/runtime),
installed once into build/lambda-runtime/ with `pip install --target`, pinned as constraints.txt pins
them. `-I -S` keeps out the user's site-packages, PYTHON* variables and the current folder.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import EnvironmentProblem
from common.settings import OFFLINE_REGION, REPO_ROOT
from common.template import SamTemplate

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
RUNTIME_PACKAGES_DIR = REPO_ROOT / "build" / "lambda-runtime"
CONSTRAINTS = REPO_ROOT / "constraints.txt"
SOURCES = ("template.yaml", "functions", "layers")  # what sam build packages
RUNTIME_PROVIDES = ("boto3", "botocore")

# Runs inside the sandbox: stdlib only. Reads its request on stdin, writes its report to a file
# (the handlers print their logs on stdout, as in Lambda).
RUNNER = r'''
import importlib, json, os, sys, time, traceback
request = json.load(sys.stdin)
sys.path[:0] = request["path"]
os.environ.update(request["environment"])

class Context:
    function_name = request["name"]
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + request["name"]
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/" + request["name"]
    log_stream_name = "sandbox"
    def get_remaining_time_in_millis(self):
        return 30000

report = {"python": list(sys.version_info[:2]), "results": []}
try:
    module_name, function_name = request["handler"].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
except Exception as error:
    report["init_error"] = {"errorType": type(error).__name__, "errorMessage": str(error),
                            "stackTrace": traceback.format_exc()}
else:
    for event in request["events"]:
        try:
            report["results"].append({"result": json.loads(json.dumps(handler(event, Context())))})
        except Exception as error:
            report["results"].append({"errorType": type(error).__name__, "errorMessage": str(error)})
report["modules"] = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
with open(request["report"], "w") as handle:
    json.dump(report, handle)
'''


class SandboxError(EnvironmentProblem):
    """The built functions cannot be run here: no python3.12, a stale build, or the runtime packages failed."""


@dataclass(frozen=True)
class BuiltFunction:
    logical_id: str
    code_dir: Path
    handler: str
    layer_dirs: list[Path]
    environment: dict[str, str]

    @property
    def path(self) -> list[Path]:
        """sys.path entries in Lambda's order: /var/task, then each layer's /opt/python."""
        return [self.code_dir, *self.layer_dirs]


@dataclass(frozen=True)
class SandboxReport:
    python: tuple[int, int]
    results: list[dict[str, Any]]
    modules: list[str]
    init_error: dict[str, Any] | None
    stdout: str


def find_python312() -> Path | None:
    """pyenv's 3.12 first, then python3.12 on PATH (as the Makefile finds it for sam build)."""
    candidates = sorted(glob.glob("/root/.pyenv/versions/3.12.*/bin/python3.12")) + [shutil.which("python3.12") or ""]
    return next((Path(c) for c in candidates if c and os.access(c, os.X_OK)), None)


def stale_sources(build_dir: Path = BUILD_DIR, root: Path = REPO_ROOT) -> list[Path]:
    """Source files changed since the build (compiled caches aside)."""
    built = (build_dir / "template.yaml").stat().st_mtime
    files = [root / "template.yaml"] + [p for folder in SOURCES[1:] for p in (root / folder).rglob("*")
                                        if p.is_file() and "__pycache__" not in p.parts]
    return [p for p in files if p.stat().st_mtime > built]


def pinned(package: str, constraints: Path = CONSTRAINTS) -> str:
    for line in constraints.read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise SandboxError(f"{constraints} pins no {package}")


def runtime_packages(python: Path, root: Path = RUNTIME_PACKAGES_DIR) -> Path:
    """boto3 and botocore (with their dependencies, as constraints.txt pins them) for `python`, installed once."""
    versions = "_".join(f"{name}-{pinned(name)}" for name in RUNTIME_PROVIDES)
    target = root / f"python{'.'.join(python.name.removeprefix('python').split('.')[:2])}-{versions}"
    if (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{target.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(partial), "--constraint", str(CONSTRAINTS),
               *(f"{name}=={pinned(name)}" for name in RUNTIME_PROVIDES)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise SandboxError(f"pip could not install {versions} for {python}: {done.stderr.strip()[-500:]}")
    (partial / ".complete").write_text(versions + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return target


def built_functions(build_dir: Path = BUILD_DIR) -> dict[str, BuiltFunction]:
    """Each function of the built template, with its layers' `python/` folders, as deployed."""
    template = SamTemplate(build_dir / "template.yaml")
    resources = template.document["Resources"]
    functions = {}
    for logical_id, spec in template.functions().items():
        layers = template.resolve(resources[logical_id]["Properties"].get("Layers", []))
        layer_dirs = [build_dir / str(resources[layer]["Properties"]["ContentUri"]) / "python" for layer in layers]
        functions[logical_id] = BuiltFunction(logical_id, spec.code_dir, spec.handler, layer_dirs, spec.environment)
    return functions


def invoke_built(function: BuiltFunction, events: list[Any], *, python: Path, runtime_dir: Path,
                 environment: dict[str, str] | None = None, timeout: float = 60.0) -> SandboxReport:
    """Import the built handler in a fresh python3.12 sandbox and run it on each event, in order."""
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "report.json"
        request = {
            "name": function.logical_id, "handler": function.handler, "events": events, "report": str(report_path),
            "path": [str(p) for p in [*function.path, runtime_dir]],
            "environment": {"AWS_LAMBDA_FUNCTION_NAME": function.logical_id, **function.environment,
                            **(environment or {})},
        }
        base = {"PATH": "/usr/bin:/bin", "HOME": scratch, "LANG": "C.UTF-8", "AWS_REGION": OFFLINE_REGION,
                "AWS_DEFAULT_REGION": OFFLINE_REGION}
        done = subprocess.run([str(python), "-I", "-S", "-c", RUNNER], input=json.dumps(request), env=base,
                              cwd=scratch, capture_output=True, text=True, timeout=timeout)
        if not report_path.exists():
            raise SandboxError(f"{function.logical_id}: the sandbox ended with status {done.returncode}: "
                               f"{done.stderr.strip()[-1000:]}")
        report = json.loads(report_path.read_text())
    return SandboxReport((report["python"][0], report["python"][1]), report["results"], report["modules"],
                         report.get("init_error"), done.stdout)

