"""What the docs say about the repo is the repo: the events' model_version as deploy writes it, the layout table's
paths, the execution bound computed rather than typed."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from common.settings import REPO_ROOT, TEMPLATE_PATH
from common.template import load_template
from data_prep.training.sagemaker_deploy import model_version
from tools.cfn import ASL
from workflow.stepfunctions import execution_bounds

DOCS = REPO_ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def json_examples(page: str) -> list[dict]:
    return [json.loads(body) for kind, body in FENCE.findall(page) if kind == "json"]


def test_the_event_example_names_the_model_as_deploy_new_does():
    examples = [example for example in json_examples((DOCS / "doors.md").read_text())
                if "model_version" in example.get("detail", {})]
    assert len(examples) == 1
    version = examples[0]["detail"]["model_version"]
    assert version == model_version(version.removeprefix("sha256-") + "0" * 52)  # sha256-<12 hex>
    pattern = load_template(TEMPLATE_PATH)["Parameters"]["ModelVersion"]["AllowedPattern"]
    assert re.fullmatch(pattern, version)


def layout_rows(page: str) -> list[list[str]]:
    """The paths named in the first column of the architecture page's layout table, row by row."""
    table = page.split("| path | what it holds |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split(" | ", 1)[0] for line in table.splitlines()[2:]]
    return [re.findall(r"`([^`]+)`", row) for row in rows]


def tracked_top_level() -> set[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    return {path.split("/", 1)[0] for path in listed.split() if path != ".gitignore"}


def test_the_layout_table_names_every_top_level_entry_and_only_real_paths():
    rows = layout_rows((DOCS / "architecture.md").read_text())
    paths = [path for row in rows for path in row]
    for path in paths:
        real = REPO_ROOT / re.sub(r"/<name>/.*$", "", path)
        assert real.exists(), path
    covered = {path.strip("/").split("/", 1)[0] for path in paths}
    assert covered == tracked_top_level()
    assert {path.rstrip("/") for path in paths if path.startswith("layers/")} == {
        f"layers/{layer.name}" for layer in (REPO_ROOT / "layers").iterdir() if layer.is_dir()}
    functions_row = next(line for line in (DOCS / "architecture.md").read_text().splitlines()
                         if line.startswith("| `functions/<name>/app.py` |"))
    assert set(re.findall(r"`(\w+)/`", functions_row)) == {
        folder.name for folder in (REPO_ROOT / "functions").iterdir() if (folder / "app.py").is_file()}


def test_the_execution_bound_is_computed_not_typed():
    page = (DOCS / "offline-runtime.md").read_text()
    bound = execution_bounds(ASL.read_text())
    assert f"{bound.worst_case_s:,.0f}" not in page and f"{bound.worst_case_s:.0f} s" not in page
    command = next(line for _, body in FENCE.findall(page) for line in body.splitlines() if "execution_bounds" in line)
    assert command.startswith(".venv/bin/python -c ")
    shown = subprocess.run(["bash", "-c", command.replace(".venv/bin/python", sys.executable, 1)], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout
    assert shown == f"{bound}\n"
