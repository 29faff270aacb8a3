"""The benchmarks' results, in one machine-readable file: `bench/results.json`.

Each benchmark, at its end, records its headline under a stable name: what was measured, the result in words, the
target, the exact command, the date and the machine. `make bench` runs them all (the suite's and `make workflow`'s
times included, through `python -m bench.timed`), and `python -m tools.measured` writes the documentation's Measured
table and every number it quotes from this file: no number in the docs is typed by hand.

`SCONES_BENCH_RESULTS` names another file (a benchmark checked on a tiny input must not overwrite the real numbers).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.settings import REPO_ROOT

RESULTS_FILE = REPO_ROOT / "bench" / "results.json"
RESULTS_ENV = "SCONES_BENCH_RESULTS"


def results_path() -> Path:
    return Path(os.environ.get(RESULTS_ENV) or RESULTS_FILE)


def machine() -> str:
    """The machine in a few words: cores, memory, architecture, Python."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = ""
    return f"{os.cpu_count()} cores{memory}, {platform.machine()}, Python {platform.python_version()}"


def this_command(module: str) -> str:
    """The benchmark's command line as `make bench` runs it (`.venv/bin/python -m bench.endpoint --requests 4000`)."""
    return shlex.join([".venv/bin/python", "-m", module, *sys.argv[1:]])


def read_results(path: Path | None = None) -> dict[str, dict[str, Any]]:
    path = path or results_path()
    if not path.is_file():
        return {}
    results: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return results


def model_sha256_of(model_dir: Path) -> str:
    """The sha256 of the model a benchmark measured (its folder checked: the ONNX file is its metadata's)."""
    from common.model_archive import SHA256_KEY, verify_model_dir

    return str(verify_model_dir(model_dir)[SHA256_KEY])


def record(name: str, *, what: str, result: str, command: str, target: str = "",
           quotes: dict[str, str] | None = None, path: Path | None = None,
           model_sha256: str | None = None) -> dict[str, Any]:
    """Write (or replace) the entry `name`: `result` is the Measured table's cell; `quotes` are shorter numbers the
    docs quote elsewhere (`<!-- measured:NAME.QUOTE -->`); `model_sha256` the model a model-dependent number was
    measured on (None: the number depends on no one model). Dated today (UTC), on this machine."""
    path = path or results_path()
    entry = {"what": what, "result": result, "target": target, "command": command,
             "date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine(), "quotes": dict(quotes or {}),
             "model_sha256": model_sha256}
    results = read_results(path)
    results[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded {name} in {path}: {result}")
    return entry


def duration_text(seconds: float) -> str:
    """73.4 -> '1 min 13 s'; 42.0 -> '42 s'."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
