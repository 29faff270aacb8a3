"""Every hint a tool prints runs as printed, from the repository root, in a shell where the venv is not activated.

A hint names one of our tools as `.venv/bin/python -m <tool> <command>` (common.settings.hint); a bare `python -m`
is not the venv's unless it is activated. The hints are collected two ways: from the source (every string a tool
can print: not docstrings, not --help texts) and from the tools' real output on a newcomer's mistakes. Each is run
with `--help` (running it for real would download, train or serve), which still fails on a wrong interpreter,
module, command or option.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.hints import VENV_PYTHON
from common.settings import REPO_ROOT
from tests.support import HANG_GUARD_S, run_main

PRODUCT = ["common", "data_prep", "workflow", "monitoring", "review", "functions", "layers", "tools", "testkit"]
HINT = re.compile(re.escape(VENV_PYTHON) + r" -m ([a-z_]+(?: [a-z][a-z_-]*)*(?: --?[a-z][a-z-]*(?: [^\s`'\")]+)?)*)")
BARE = re.compile(r"(?<![/\w.])python3? -m [a-z]")


def printable_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each string a module can print: f-strings with settings.hint(...) expanded, docstrings and
    click `help=` texts left out (documentation, not hints), and run_cli's prog name (run_cli shows it as a hint)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                                          ast.Constant):
            skipped.add(id(body[0].value))
        if isinstance(node, ast.keyword) and node.arg == "help":
            skipped.update(id(part) for part in ast.walk(node.value))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_cli":
            skipped.update(id(part) for part in ast.walk(node))

    def text_of(node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        if isinstance(node, ast.FormattedValue):
            call = node.value
            name = getattr(call, "func", None)
            if isinstance(call, ast.Call) and getattr(name, "id", getattr(name, "attr", None)) == "hint":
                return f"{VENV_PYTHON} -m {call.args[0].value}"  # type: ignore[attr-defined]
            return "{}"
        return "".join(text_of(part) for part in node.values)  # type: ignore[attr-defined]

    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.JoinedStr):
            skipped.update(id(part) for part in node.values)
            found.append((node.lineno, text_of(node)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
    return found


def product_strings() -> list[tuple[str, str]]:
    return [(f"{path.relative_to(REPO_ROOT)}:{line}", text)
            for package in PRODUCT for path in sorted((REPO_ROOT / package).rglob("*.py"))
            for line, text in printable_strings(path)]


def test_no_printed_string_names_a_bare_python():
    bare = [f"{where}: {text!r}" for where, text in product_strings() if BARE.search(text)]
    assert bare == []


def runs_as_printed(commands: set[str], tmp_path: Path) -> dict[str, str]:
    """Run each `.venv/bin/python -m ...` hint with --help from a folder laid out as the repository root (`.venv`
    is this interpreter's venv), PATH without the venv and no VIRTUAL_ENV: {command: why it failed}."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    venv_bin = str(Path(sys.prefix) / "bin")
    environment = {name: value for name, value in os.environ.items()
                   if name not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"} and not name.startswith("AWS_")}
    environment["PATH"] = os.pathsep.join(part for part in os.environ["PATH"].split(os.pathsep) if part != venv_bin)
    failures = {}
    for command in sorted(commands):
        done = subprocess.run(["bash", "-c", f"{command} --help"], cwd=root, env=environment, capture_output=True,
                              text=True, timeout=HANG_GUARD_S)
        if done.returncode != 0 or "Usage:" not in done.stdout:
            failures[command] = f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
    return failures


def test_every_hint_in_the_source_runs_as_printed(tmp_path):
    commands = {f"{VENV_PYTHON} -m {match}" for _, text in product_strings() for match in HINT.findall(text)}
    assert len(commands) >= 10  # the scan finds them (review serve, data_prep transform/train/extract/all, ...)
    assert runs_as_printed(commands, tmp_path) == {}


@pytest.mark.parametrize("main_module,args", [
    ("workflow.cli", ["classify-prefix", "--offline", "--prefix", "."]),  # no model: train one
    ("data_prep.cli", ["transform"]),  # no archive: download it
    ("data_prep.cli", ["train", "local"]),  # no dataset: build it
    ("review.cli", ["serve", "--source", "no-such-folder"]),  # what folder to give
    ("workflow.cli", ["run", "--limit", "0"]),  # a usage error: "Try '... --help'"
])
def test_hints_in_the_tools_output_run_as_printed(main_module, args, tmp_path, monkeypatch, capsys):
    import importlib

    monkeypatch.chdir(tmp_path)
    result = run_main(importlib.import_module(main_module).main, args, monkeypatch=monkeypatch, capsys=capsys)
    assert result.status == 2
    commands = {f"{VENV_PYTHON} -m {match}" for match in HINT.findall(result.stdout + result.stderr)}
    assert commands, result.stderr  # the mistake's line names what to run
    assert not BARE.search(result.stdout + result.stderr)
    assert runs_as_printed(commands, tmp_path) == {}
