"""The README and the docs/ pages are executable: every block marked `<!-- offline -->` runs as written, after
`make workflow`.

`make workflow` is `python -m workflow run --source ../shared/data/cifar100_bicycle_motorcycle/train`; here it runs
on a small generated folder at that path, with `--members 1 --epochs 1` so it takes seconds. Each marked block then
runs with bash in its own copy of that folder (every block is written for "just after `make workflow`"), on a
machine with no AWS setup, and must exit 0.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.settings import REPO_ROOT, class_names
from testkit.images import labelled_folder
from tests.support import bare_aws_environment

MARKER = "<!-- offline -->"
SHARED_TRAIN = Path("shared/data/cifar100_bicycle_motorcycle/train")  # where the docs' ../shared/... points
PAGES = ("README.md", "docs/**/*.md")  # the pages whose marked blocks run


def offline_blocks(page: str, text: str) -> list[tuple[str, str]]:
    """("page:line", bash text) of each fenced bash block right after the marker."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines, 1):
        if line.strip() != MARKER:
            continue
        assert lines[number].startswith("```bash"), f"{page}:{number}: {MARKER} must be followed by a ```bash block"
        end = next(i for i in range(number + 1, len(lines)) if lines[i].startswith("```"))
        blocks.append((f"{page}:{number + 2}", "\n".join(lines[number + 1:end])))
    return blocks


def pages() -> list[str]:
    return sorted({path.relative_to(REPO_ROOT).as_posix() for pattern in PAGES for path in REPO_ROOT.glob(pattern)})


BLOCKS = [block for page in pages() for block in offline_blocks(page, (REPO_ROOT / page).read_text())]


def bash(script: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True,
                          env=bare_aws_environment(home), timeout=300)


@pytest.fixture(scope="module")
def after_make_workflow(tmp_path_factory):
    """A folder as `make workflow` leaves it: .venv (this interpreter's), and out/ from the offline run."""
    root = tmp_path_factory.mktemp("readme")
    labelled_folder(root / SHARED_TRAIN, per_class=140, classes=class_names())  # what `make workflow` builds
    repo = root / "repo"
    repo.mkdir()
    (repo / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    recipe = re.search(r"^workflow:.*\n\t(.*)$", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe and "-m workflow run $(if $(SOURCE),--source $(SOURCE))" in recipe.group(1)  # no --out: out/
    run = bash(f".venv/bin/python -m workflow run --source ../{SHARED_TRAIN} --members 1 --epochs 1 --json",
               repo, root / "home")
    return root, repo, run


def test_make_workflow_writes_the_layout_every_command_reads(after_make_workflow):
    _, repo, run = after_make_workflow
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)  # --json: exactly one JSON document on stdout
    assert summary["executions"] >= 50 and summary["failed"] == summary["aborted"] == 0
    assert summary["report"] == "out/report/report.html" and summary["summary_file"] == "out/summary.json"
    for path in ("dataset/manifest.csv", "model/model.onnx", "model/baseline.json", "report/report.html",
                 "summary.json", "run.log"):
        assert (repo / "out" / path).is_file(), path
    assert any((repo / "out" / "data_capture").rglob("*.jsonl"))


def test_library_warnings_go_to_the_run_log_not_the_terminal(after_make_workflow):
    _, repo, run = after_make_workflow
    for noise in ("torchvision", "Warning", "warn(", "INFO"):
        assert noise not in run.stderr
    assert "torchvision is not installed" in (repo / "out" / "run.log").read_text()
    assert "library warnings and logs: out/run.log" in run.stderr


def test_the_docs_mark_offline_blocks():
    assert len(BLOCKS) >= 4
    assert all(".venv/bin/python -m " in block for _, block in BLOCKS)


def test_every_page_with_a_marked_block_is_run():
    """A marker in a Markdown file this test does not read (a page outside docs/, a new top-level file) would be a block
    that looks tested and is not."""
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    marked = {page for page in tracked
              if any(line.strip() == MARKER for line in (REPO_ROOT / page).read_text().splitlines())}
    assert marked == {where.split(":")[0] for where, _ in BLOCKS}, "marked blocks in pages this test does not run"


@pytest.mark.parametrize(("where", "block"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_the_offline_block_runs_as_written(where, block, after_make_workflow):
    root, repo, run = after_make_workflow
    assert run.returncode == 0
    copy = root / ("block-" + where.replace("/", "-").replace(":", "-"))
    shutil.copytree(repo, copy, symlinks=True)
    done = bash(block, copy, root / "home")
    assert done.returncode == 0, f"{where}\n{block}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    if "workflow run --model-dir" in block:
        assert "dataset: out/dataset (reused; --source rebuilds it)" in done.stderr  # nothing downloaded
