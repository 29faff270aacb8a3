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


GROUPS = {"data_prep": "data_prep.cli", "workflow": "workflow.cli", "monitoring": "monitoring.cli",
          "review": "review.cli"}


def help_texts() -> dict[str, str]:
    """Every command's --help as click renders it (`data_prep train local`: its text), read in-process."""
    import importlib

    import click

    texts = {}

    def visit(command: click.Command, path: list[str], parent: click.Context | None) -> None:
        context = click.Context(command, info_name=path[-1], parent=parent)
        texts[" ".join(path)] = command.get_help(context)
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                visit(command.get_command(context, name), [*path, name], context)  # type: ignore[arg-type]

    for package, module in GROUPS.items():
        visit(importlib.import_module(module).cli, [package], None)
    return texts


def parses(hint_args: str) -> str | None:
    """Why `<package> <command> [options]` (a hint's text after `-m`) names a command or an option its tool does not
    have, or None. Checked in-process against the click commands (their values are examples: paths need not exist);
    the interpreter and module are what the tests above run for real."""
    import importlib
    import shlex

    import click

    package, *words = shlex.split(hint_args)
    if package not in GROUPS:
        return None  # tools.* and other modules: run with --help by the tests above
    command: click.Command = importlib.import_module(GROUPS[package]).cli
    context = click.Context(command, info_name=package)
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        found = command.get_command(context, words[0])
        if found is None:
            return f"no command {words[0]!r}"
        command, context, words = found, click.Context(found, info_name=words[0], parent=context), words[1:]
    known = {name for param in command.get_params(context) for name in [*param.opts, *param.secondary_opts]}
    unknown = [word for word in words if word.startswith("-") and word.split("=")[0] not in known]
    return f"no option {unknown[0]!r}" if unknown else None


# A SAM CLI command said as bare `sam ...`: a fresh clone has no `sam` on PATH (`make install-sam` puts the pinned
# one in .venv-sam; `make build` / `make deploy` run it): a hint names what runs as printed (a bare `python -m`: BARE).
BARE_PROGRAM = re.compile(r"(?<![\w/.-])sam (?:build|deploy|validate|local|package|sync|delete|logs)\b")
MAKE_TARGET = re.compile(r"`make ([a-z][a-z-]*)")


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE))


def test_every_help_text_names_commands_that_run_as_printed():
    texts = help_texts()
    assert {"data_prep train local", "workflow run", "monitoring report", "review serve"} <= set(texts)
    bare = {name: BARE.findall(text) for name, text in texts.items() if BARE.search(text)}
    assert bare == {}
    examples = {match for text in texts.values() for match in HINT.findall(re.sub(r"\\\n\s*", " ", text))}
    assert len(examples) >= 30  # every command's examples
    assert {example: why for example in sorted(examples) if (why := parses(example))} == {}


def test_every_backticked_command_in_what_the_tools_print_can_be_run():
    """`sam build` (no SAM CLI on PATH), `python -m ...` (not the venv's), `make nosuchtarget`: none is printed."""
    strings = product_strings() + [(f"{name} --help", text) for name, text in help_texts().items()]
    assert [f"{where}: {text!r}" for where, text in strings if BARE_PROGRAM.search(text)] == []
    targets = make_targets()
    assert {"install-sam", "build", "deploy"} <= targets
    assert [f"{where}: make {target}" for where, text in strings for target in MAKE_TARGET.findall(text)
            if target not in targets] == []


def test_the_offline_api_hints_need_no_tool_the_project_does_not_install():
    """curl signs SigV4 itself (`--aws-sigv4`); awscurl is not installed by `make install`. The JSON form names the
    object the `aws s3 cp` line just above puts in the bucket, and serve-api (no such line) prints only the bytes
    form."""
    from workflow.offline.runtime import OfflineRuntime

    runtime = OfflineRuntime.__new__(OfflineRuntime)
    runtime.api_url, runtime.bucket, runtime.moto_url = "http://127.0.0.1:4001/v1", "offline-bucket", "http://m:1"
    runtime.lambda_url, runtime.endpoint_url, runtime.state_machine_arn = "http://l:2", "http://e:3", "arn:sm"
    endpoint = "http://127.0.0.1:4001/v1/classifications"
    sign = "curl --aws-sigv4 aws:amz:us-east-1:execute-api --user testing:testing"
    assert runtime.api_help() == [
        f"classification API: POST {endpoint}",
        f"{sign} -H 'Content-Type: image/png' --data-binary @photo.png {endpoint}"]
    assert runtime.connection_help()[2:] == [
        "# the aws lines need the AWS CLI, which make install does not install: "
        "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
        "aws --endpoint-url http://m:1 s3 cp photo.jpg s3://offline-bucket/incoming/photo.jpg   # starts an execution",
        "aws --endpoint-url http://m:1 stepfunctions list-executions --state-machine-arn arn:sm",
        f"classification API: POST {endpoint}",
        f"{sign} -H 'Content-Type: image/png' --data-binary @photo.png {endpoint}",
        f"{sign} -H 'Content-Type: application/json' -d '{{\"s3_bucket\": \"offline-bucket\", \"s3_key\": "
        f"\"incoming/photo.jpg\"}}' {endpoint}   # the image the s3 cp line put there"]
    assert not [line for line in runtime.connection_help() if "awscurl" in line]
