"""`make test-stress`: the whole suite N times in a row while CPU burners keep every core busy; any failure fails.

A test that passes only on a quiet machine is a bug (CI runs on 2 busy cores): this is the proof that none does.
One burner process per core spins from before the first run to after the last; they are stopped however this ends
(a failure, Ctrl-C, SIGTERM), and each also stops by itself once this process is gone, so none outlives it. Every
run gets its own random test order (pytest-randomly prints the seed in the run's header).

    .venv/bin/python -m tools.stress --runs 3 -- .venv/bin/python -m pytest -p no:cacheprovider
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# Spins until its parent (this tool) is gone: an orphan burner cannot keep a machine busy after a SIGKILL.
BURN = ("import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n"
        "    for _ in range(200_000):\n        pass\n")


@contextmanager
def burning(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` CPU burner processes for the block; stopped and reaped at its end, whatever ends it."""
    burners: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            burners.append(subprocess.Popen([sys.executable, "-c", BURN, str(os.getpid())]))
        yield burners
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `burning`, which stops the burners


def main() -> None:
    parser = argparse.ArgumentParser(usage="%(prog)s [--runs N] [--burners N] -- COMMAND ...")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2, help="Default: one per core.")
    arguments = sys.argv[1:]
    if "--" not in arguments or arguments.index("--") == len(arguments) - 1:
        parser.error("give the command to run after --")
    split = arguments.index("--")
    args, command = parser.parse_args(arguments[:split]), arguments[split + 1:]
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    statuses: list[int] = []
    with burning(args.burners) as burners:
        print(f"stress: {len(burners)} CPU burners (pids {', '.join(str(b.pid) for b in burners)}) keep "
              f"{os.cpu_count()} cores busy; {args.runs} runs of: {' '.join(command)}", flush=True)
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            statuses.append(subprocess.run(command, check=False).returncode)
            print(f"stress: run {run} of {args.runs} exited {statuses[-1]} after "
                  f"{time.monotonic() - started:.0f} s", flush=True)
    passed = statuses.count(0)
    print(f"stress: {passed} of {args.runs} runs passed under load"
          + ("" if passed == args.runs else f" (exit statuses {statuses})"), flush=True)
    sys.exit(0 if passed == args.runs else 1)


if __name__ == "__main__":
    main()
