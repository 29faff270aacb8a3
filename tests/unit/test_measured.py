"""Numbers in the docs are measured ones: bench/results.json (what `make bench` records) writes every marked number
in README.md and docs/, and the docs agree with it."""

from __future__ import annotations

import json
import re

import pytest

from bench import results as bench_results
from common.settings import REPO_ROOT
from tools import measured

RESULTS = {
    "suite": {"what": "`make test`", "result": "4 min 2 s", "target": "", "command": "make test",
              "date": "2026-12-07", "machine": "2 cores", "quotes": {"time": "4 min 2 s"}, "model_sha256": None},
    "endpoint": {"what": "endpoint | p50", "result": "0.8 ms", "target": "≤ 1 ms", "command": "python -m bench.x",
                 "date": "2026-12-06", "machine": "2 cores", "quotes": {}, "model_sha256": "c0ffee" * 10 + "abcd"},
    "older": {"what": "before models were named", "result": "1 s", "target": "", "command": "python -m bench.y",
              "date": "2026-12-01", "machine": "2 cores", "quotes": {}},
}


def test_the_docs_agree_with_the_measured_file():
    results = measured.load()
    assert measured.stale(measured.documents(), results) == []  # run `python -m tools.measured` after `make bench`
    text = "".join(path.read_text() for path in measured.documents())
    assert "<!-- measured:table -->" in text and text.count("<!-- /measured -->") >= 10
    assert "runs pytest (about a minute" not in (REPO_ROOT / "docs" / "testing.md").read_text()  # typed, wrong


def test_every_result_says_when_where_and_how_it_was_measured():
    for name, entry in measured.load().items():
        assert {"what", "result", "target", "command", "date", "machine", "quotes"} <= set(entry), name
        assert entry["command"] and entry["date"] and entry["machine"], name


def test_the_table_and_the_quotes_are_written_from_the_file():
    text = ("The suite takes <!-- measured:suite.time -->about a minute<!-- /measured -->.\n\n"
            "<!-- measured:table -->\n| a hand-made table |\n<!-- /measured:table -->\n"
            "p50: <!-- measured:endpoint -->old<!-- /measured --> on "
            "<!-- measured:endpoint.date -->?<!-- /measured -->")
    written = measured.render(text, RESULTS)
    assert written.splitlines() == [
        "The suite takes <!-- measured:suite.time -->4 min 2 s<!-- /measured -->.",
        "",
        "<!-- measured:table -->",
        "| what | result | target | model | command | measured |",
        "| --- | --- | --- | --- | --- | --- |",
        "| `make test` | 4 min 2 s |  | — | `make test` | 2026-12-07, 2 cores |",
        "| endpoint \\| p50 | 0.8 ms | ≤ 1 ms | sha256 c0ffeec0ffee | `python -m bench.x` | 2026-12-06, 2 cores |",
        "| before models were named | 1 s |  | not recorded | `python -m bench.y` | 2026-12-01, 2 cores |",
        "<!-- /measured:table -->",
        "p50: <!-- measured:endpoint -->0.8 ms<!-- /measured --> on <!-- measured:endpoint.date -->2026-12-06"
        "<!-- /measured -->"]
    assert measured.render(written, RESULTS) == written  # written once: nothing left to change


def test_check_names_a_file_that_disagrees_and_an_unknown_result_is_an_error(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- measured:suite.time -->typed by hand<!-- /measured -->\n")
    assert measured.stale([page], RESULTS) == [page]
    page.write_text("<!-- measured:nothing.time -->1 s<!-- /measured -->\n")
    with pytest.raises(measured.MeasuredError, match=re.escape("no result 'nothing' in bench/results.json")):
        measured.stale([page], RESULTS)
    page.write_text("<!-- measured:suite.speed -->1 s<!-- /measured -->\n")
    with pytest.raises(measured.MeasuredError, match="quotes no 'speed'"):
        measured.stale([page], RESULTS)


def test_a_benchmark_records_its_result_dated_with_its_machine_and_command(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    monkeypatch.setenv(bench_results.RESULTS_ENV, str(path))
    monkeypatch.setattr("sys.argv", ["bench/endpoint.py", "--requests", "50"])
    bench_results.record("endpoint_cold_start", what="cold start", result="0.31 s", target="≤ 1 s",
                         command=bench_results.this_command("bench.endpoint"), quotes={"s": "0.31 s"})
    bench_results.record("suite", what="suite", result="4 min", command="make test")
    entries = json.loads(path.read_text())
    assert list(entries) == ["endpoint_cold_start", "suite"]
    assert entries["suite"]["model_sha256"] is None  # a number about no one model
    entry = entries["endpoint_cold_start"]
    assert entry["command"] == ".venv/bin/python -m bench.endpoint --requests 50"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", entry["date"]) and re.match(r"\d+ cores", entry["machine"])
    assert (entry["result"], entry["target"], entry["quotes"]) == ("0.31 s", "≤ 1 s", {"s": "0.31 s"})
    assert bench_results.duration_text(73.4) == "1 min 13 s" and bench_results.duration_text(42) == "42 s"


def test_a_model_dependent_benchmark_names_the_model_it_measured(tiny_model, tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    monkeypatch.setenv(bench_results.RESULTS_ENV, str(path))
    sha = bench_results.model_sha256_of(tiny_model)
    assert sha == json.loads((tiny_model / "metadata.json").read_text())["model_sha256"]
    bench_results.record("endpoint_model", what="model", result="0.3 ms", command="c", model_sha256=sha)
    assert json.loads(path.read_text())["endpoint_model"]["model_sha256"] == sha


def test_the_benchmarks_that_measure_a_model_record_its_sha256():
    """Each model-dependent benchmark passes the model it measured to record() (model_quality cross-validates the
    recipe, training its own folds: no one model)."""
    import ast

    for name in ("endpoint", "workflow_throughput", "api", "batch", "audit_sampling", "quality_scenario",
                 "sagemaker_training"):
        tree = ast.parse((REPO_ROOT / "bench" / f"{name}.py").read_text())
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", None) == "record"]
        assert calls, name
        assert all("model_sha256" in {keyword.arg for keyword in call.keywords} for call in calls), name


def test_make_n_bench_records_nothing(tmp_path):
    """`make -n` still runs recipe lines that name $(MAKE): bench.timed then timed an inner make that only printed,
    and wrote "0 s" over the suite's time. Under a dry run it runs and records nothing; without, it records."""
    import subprocess
    import sys

    (tmp_path / "inner.mk").write_text("work:\n\t@true\n")
    (tmp_path / "Makefile").write_text(
        f".PHONY: bench\nbench:\n\t{sys.executable} -m bench.timed suite --what 'the inner make' -- $(MAKE) -s -f "
        f"{tmp_path / 'inner.mk'} work\n")
    results = tmp_path / "results.json"
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), bench_results.RESULTS_ENV: str(results),
                   "PYTHONPATH": str(REPO_ROOT)}
    dry = subprocess.run(["make", "-n", "-f", str(tmp_path / "Makefile"), "bench"], cwd=REPO_ROOT, env=environment,
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "make -n (a dry run): make -s -f" in dry.stdout and "nothing is recorded for suite" in dry.stdout
    assert not results.exists()
    real = subprocess.run(["make", "-f", str(tmp_path / "Makefile"), "bench"], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert real.returncode == 0, real.stderr
    assert json.loads(results.read_text())["suite"]["command"].startswith("make -s -f")
