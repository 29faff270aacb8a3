"""Benchmark: how long a whole command takes, wall clock, recorded in bench/results.json.

`make bench` times the suite (`make test`) and the offline workflow (`make workflow`) this way, so the docs' "the
suite takes ..." and "`make workflow` takes ..." are measured, dated numbers, never typed ones. A command that fails
records nothing (and this exits with its status). Under `make -n` (a dry run), make still runs the recipe lines that
name $(MAKE), this one among them, while the inner make only prints: nothing is run, timed or recorded then (a
"0 s" would replace the real number).

    .venv/bin/python -m bench.timed suite --what "`make test`: the whole suite" -- make test
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time

from bench.results import duration_text, record


def make_dry_run(makeflags: str) -> bool:
    """Whether make runs us under -n/--just-print/--dry-run: MAKEFLAGS's first word holds the one-letter flags
    (no dash: `n`, `kn`) when there are any (GNU make)."""
    words = makeflags.split()
    return bool(words) and not words[0].startswith("-") and "n" in words[0]


def main() -> None:
    parser = argparse.ArgumentParser(usage="%(prog)s NAME --what TEXT [--target TEXT] -- COMMAND ...")
    parser.add_argument("name", help="The entry in bench/results.json (suite, workflow, ...).")
    parser.add_argument("--what", required=True, help="What the command does, for the Measured table.")
    parser.add_argument("--target", default="")
    arguments = sys.argv[1:]
    if "--" not in arguments or arguments.index("--") == len(arguments) - 1:
        parser.error("give the command to time after --")
    split = arguments.index("--")
    args, command = parser.parse_args(arguments[:split]), arguments[split + 1:]
    if make_dry_run(os.environ.get("MAKEFLAGS", "")):
        print(f"make -n (a dry run): {shlex.join(command)} is not run, and nothing is recorded for {args.name}")
        return
    started = time.perf_counter()
    status = subprocess.run(command, check=False).returncode  # noqa: S603 - the command make bench gives
    seconds = time.perf_counter() - started
    if status:
        print(f"{shlex.join(command)} exited {status} after {duration_text(seconds)}: nothing recorded")
        sys.exit(status)
    record(args.name, what=args.what, result=duration_text(seconds), target=args.target,
           command=shlex.join(command), quotes={"time": duration_text(seconds),
                                                "minutes": f"{max(1, round(seconds / 60))} min"})


if __name__ == "__main__":
    main()
