"""The package layering rule (tools/layering.py) holds for the code, and the Architecture page states it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tools import layering
from tools.layering import Import

ARCHITECTURE = Path(layering.REPO_ROOT / "docs" / "architecture.md")  # its "Layering" section


def test_every_import_runs_down_the_layers_and_there_is_no_cycle():
    assert layering.violations() == []


def test_an_upward_import_is_reported_with_its_file_and_line(monkeypatch):
    swapped = tuple(("data_prep",) if layer == ("monitoring",) else ("monitoring",)
                    if layer == ("data_prep",) else layer for layer in layering.LAYERS)
    monkeypatch.setattr(layering, "LAYERS", swapped)
    problems = layering.violations()
    assert any(re.match(r"data_prep/training/local\.py:\d+: data_prep \(layer 2\) imports monitoring\.baseline "
                        r"\(monitoring, layer 3\)", problem) for problem in problems), problems


def test_an_import_of_the_test_tree_is_reported(monkeypatch):
    scanned = layering.imports_of

    def with_a_test_import(module, path):
        yield from scanned(module, path)
        if module == "bench.endpoint":
            yield Import(module, "tests.support.run_main", 7)

    monkeypatch.setattr(layering, "imports_of", with_a_test_import)
    assert layering.violations() == ["bench/endpoint.py:7: bench imports tests.support: nothing outside tests/ may "
                                     "import the test tree (shared helpers belong in testkit)"]


def test_an_import_cycle_is_reported():
    files = {"a": Path("a.py"), "b": Path("b.py"), "c": Path("c.py")}
    edges = [Import("a", "b", 1), Import("b", "a", 2), Import("b", "c", 3)]
    assert layering.cycles(files, edges) == [["a", "b"]]


def test_the_architecture_page_states_the_same_layers():
    section = ARCHITECTURE.read_text().split("### Layering", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", section, flags=re.MULTILINE)
    stated = tuple(tuple(re.findall(r"`(\w+)`", packages)) for _, packages in sorted(rows, key=lambda r: int(r[0])))
    assert stated == layering.LAYERS


def test_aws_commands_load_neither_moto_nor_starlette():
    probe = ("import sys\n"
             "from workflow.cli import cli\n"
             "cli(['start-executions', '--help'], standalone_mode=False)\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'moto', 'starlette', 'uvicorn', 'torch'}))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=layering.REPO_ROOT)
    assert "--stack-name" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
