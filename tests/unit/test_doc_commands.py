"""Every command of ours that the docs show (`python -m data_prep ...`, `scones-review ...`, in inline code or a bash
block) names subcommands and options the real CLI has: a renamed flag fails here, not in a reader's terminal."""

from __future__ import annotations

import importlib
import re
import shlex

import click
import pytest

from common.settings import REPO_ROOT

PROGRAMS = {"data_prep": "data_prep.cli", "workflow": "workflow.cli", "monitoring": "monitoring.cli",
            "review": "review.cli"}
SCRIPTS = {f"scones-{name.replace('_', '-')}": name for name in PROGRAMS}  # pyproject's [project.scripts]
PAGES = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`]+)`")
START = re.compile(r"(?:python -m |(?<![\w-])(?=scones-(?:" + "|".join(SCRIPTS).replace("scones-", "") + r")\b))")
BARE = re.compile(r"^(?:" + "|".join(PROGRAMS) + r") [a-z]")  # an inline `data_prep deploy new` names one too
SHELL_END = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "&", ")", "#"}


def snippets(text: str) -> list[str]:
    """The code of a page: each bash block (continuation lines joined), then each inline code span."""
    blocks = [block.replace("\\\n", " ") for block in FENCE.findall(text)]
    prose = FENCE.sub("", text)
    return [line for block in blocks for line in block.splitlines()] + [
        span.replace("\n", " ") for span in INLINE.findall(prose)]


def commands(text: str) -> list[list[str]]:
    """Each invocation of our CLIs in the page's code, as words: the program's name, then its arguments. A span that
    lists subcommands (`monitoring report/drift`) is one command per alternative."""
    found = []
    for snippet in snippets(text):
        if BARE.match(snippet):
            program, rest = snippet.split(" ", 1)
            alternatives = rest.split("/") if "/" in rest.split(" ", 1)[0] else [rest]
            found += [[program, *alternative.split()] for alternative in alternatives]
            continue
        for start in START.finditer(snippet):
            rest = re.sub(r"<[^<>]*>", "<x>", snippet[start.end():])  # `<previous job>`: one placeholder
            try:
                words = shlex.split(rest, comments=True)
            except ValueError:  # an unclosed quote in prose: read up to it
                words = rest.split()
            program = words[0] if words else ""
            program = SCRIPTS.get(program, program)
            if program not in PROGRAMS:
                continue
            argv = []
            for word in words[1:]:
                if word in SHELL_END:
                    break
                argv.append(word)
            found.append([program, *argv])
    return found


def problems(program: str, argv: list[str]) -> list[str]:
    """What in `argv` the CLI does not have: a subcommand of a group, an option of the command it is given to."""
    command: click.Command = importlib.import_module(PROGRAMS[program]).cli
    path = program
    said = []
    words = list(argv)
    while words:
        word = words.pop(0)
        if word in ("...", "…") or word.startswith("<"):
            continue
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            option = next((param for param in command.params
                           if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts)), None)
            if name in ("-h", "--help", "--debug"):  # every command's help; run_cli takes --debug anywhere
                continue
            if option is None:
                said.append(f"{path}: no option {name}")
                takes_value = bool(words) and not words[0].startswith("-") and not (
                    isinstance(command, click.Group) and words[0] in command.commands)
            else:
                takes_value = not (option.is_flag or option.count) and "=" not in word
            if takes_value and words:
                words.pop(0)
            continue
        if isinstance(command, click.Group):
            sub = command.commands.get(word)
            if sub is None:
                return [*said, f"{path}: no subcommand {word!r}"]
            command, path = sub, f"{path} {word}"
    if argv and isinstance(command, click.Group) and "--help" not in argv and "-h" not in argv:
        said.append(f"{path}: a group, not a command (say which subcommand)")
    return said


def documented_commands() -> list[tuple[str, list[str]]]:
    return [(page.relative_to(REPO_ROOT).as_posix(), command)
            for page in PAGES for command in commands(page.read_text())]


def test_the_parser_reads_inline_and_block_commands():
    text = ("Run `python -m data_prep deploy update --training-job <job> --no-gate` or\n"
            "```bash\n.venv/bin/python -m monitoring drift --capture s3://b/c \\\n    --last 500  # a comment\n"
            "scones-review serve --source s3://b | tee x\n```\n")
    text += "and `monitoring report/drift --last 5`, `data_prep deploy --update`"
    assert commands(text) == [["monitoring", "drift", "--capture", "s3://b/c", "--last", "500"],
                              ["review", "serve", "--source", "s3://b"],
                              ["data_prep", "deploy", "update", "--training-job", "<x>", "--no-gate"],
                              ["monitoring", "report"], ["monitoring", "drift", "--last", "5"],
                              ["data_prep", "deploy", "--update"]]


@pytest.mark.parametrize(("argv", "said"), [
    (["data_prep", "deploy", "--update"], ["data_prep deploy: no option --update",
                                           "data_prep deploy: a group, not a command (say which subcommand)"]),
    (["data_prep", "deploy"], ["data_prep deploy: a group, not a command (say which subcommand)"]),
    (["data_prep", "deploy", "--autoscale-max", "4"],
     ["data_prep deploy: no option --autoscale-max",
      "data_prep deploy: a group, not a command (say which subcommand)"]),
    (["data_prep", "deploy", "update", "--autoscale-max", "4"], ["data_prep deploy update: no option --autoscale-max"]),
    (["data_prep", "deploy", "new", "--autoscale-max", "4"], []),
    (["data_prep", "deploy", "--serverless"], ["data_prep deploy: no option --serverless",
                                               "data_prep deploy: a group, not a command (say which subcommand)"]),
    (["workflow", "runn"], ["workflow: no subcommand 'runn'"]),
    (["data_prep", "deploy", "update", "--training-job", "j", "--no-gate"], []),
    (["monitoring", "drift", "--capture", "s3://b/c", "--last", "500"], []),
])
def test_a_stale_command_is_named(argv, said):
    assert problems(argv[0], argv[1:]) == said


def test_the_docs_show_many_commands():
    assert len(documented_commands()) >= 80


def test_every_documented_command_exists():
    stale = [f"{page}: {' '.join(argv)}: {problem}"
             for page, argv in documented_commands() for problem in problems(argv[0], argv[1:])]
    assert stale == []
