"""Write the documentation's measured numbers from bench/results.json: `python -m tools.measured [--check]`.

`make bench` records every benchmark's result in bench/results.json (bench/results.py), dated, with the machine
and the command. Markdown files hold markers where those numbers go, and this fills them, so nothing a command can
produce is typed by hand, wherever the text lives (README.md, any docs/ page):

    <!-- measured:table -->                 the whole Measured table: what, result, target, the model measured
                                            (its sha256, short), command, when and where
    <!-- /measured:table -->
    <!-- measured:NAME -->...<!-- /measured -->          an entry's result, inline
    <!-- measured:NAME.QUOTE -->...<!-- /measured -->    one of its quotes (a shorter number), or its date/machine

`--check` changes nothing and exits 1 naming each file whose numbers disagree with the file (a test runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = REPO_ROOT / "bench" / "results.json"
TABLE = re.compile(r"(<!-- measured:table -->\n)(.*?)(<!-- /measured:table -->)", re.DOTALL)
INLINE = re.compile(r"(<!-- measured:([a-z0-9_]+)(?:\.([a-z0-9_]+))? -->)(.*?)(<!-- /measured -->)")
FIELDS = ("date", "machine", "command", "target", "what")


class MeasuredError(Exception):
    """A marker names a result bench/results.json does not hold."""


def load(path: Path = RESULTS_FILE) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return results


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_cell(entry: dict[str, Any]) -> str:
    """Which model a number is about: `sha256 <12 hex>` (results.json holds all 64), `—` when it is about no one
    model, `not recorded` for an entry recorded before benchmarks named the model."""
    if "model_sha256" not in entry:
        return "not recorded"
    return f"sha256 {entry['model_sha256'][:12]}" if entry["model_sha256"] else "—"


def table(results: dict[str, dict[str, Any]]) -> str:
    """The Measured table, one row per entry, in the file's order."""
    lines = ["| what | result | target | model | command | measured |", "| --- | --- | --- | --- | --- | --- |"]
    for entry in results.values():
        lines.append(f"| {cell(entry['what'])} | {cell(entry['result'])} | {cell(entry.get('target', ''))} | "
                     f"{model_cell(entry)} | `{cell(entry['command'])}` | {cell(entry['date'])}, "
                     f"{cell(entry['machine'])} |")
    return "\n".join(lines) + "\n"


def quote(results: dict[str, dict[str, Any]], name: str, part: str | None, where: str) -> str:
    entry = results.get(name)
    if entry is None:
        raise MeasuredError(f"{where}: no result {name!r} in bench/results.json (it has {', '.join(results)})")
    if part is None:
        return str(entry["result"])
    if part in FIELDS:
        return str(entry.get(part, ""))
    quotes = entry.get("quotes", {})
    if part not in quotes:
        raise MeasuredError(f"{where}: result {name!r} quotes no {part!r} (it quotes {', '.join(quotes) or 'nothing'})")
    return str(quotes[part])


def render(text: str, results: dict[str, dict[str, Any]], where: str = "text") -> str:
    """`text` with every marker filled from `results`."""
    text = TABLE.sub(lambda match: match.group(1) + table(results) + match.group(3), text)
    return INLINE.sub(lambda match: match.group(1) + quote(results, match.group(2), match.group(3), where)
                      + match.group(5), text)


def documents(root: Path = REPO_ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def stale(paths: list[Path], results: dict[str, dict[str, Any]]) -> list[Path]:
    """The files whose markers do not hold what `results` says."""
    return [path for path in paths if render(path.read_text(), results, str(path)) != path.read_text()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="Change nothing; exit 1 if a file disagrees.")
    parser.add_argument("--results", type=Path, default=RESULTS_FILE)
    parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md and docs/).")
    args = parser.parse_args()
    results = load(args.results)
    paths = args.files or documents()
    try:
        changed = stale(paths, results)
        if not args.check:
            for path in changed:
                path.write_text(render(path.read_text(), results, str(path)))
    except MeasuredError as error:
        print(f"MeasuredError: {error}", file=sys.stderr)
        sys.exit(2)
    for path in changed:
        print(f"{path}: {'disagrees with' if args.check else 'rewritten from'} {args.results}")
    sys.exit(1 if args.check and changed else 0)


if __name__ == "__main__":
    main()
