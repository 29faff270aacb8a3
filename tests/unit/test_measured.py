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
              "date": "2026-12-07", "machine": "2 cores", "quotes": {"time": "4 min 2 s"}},
    "endpoint": {"what": "endpoint | p50", "result": "0.8 ms", "target": "≤ 1 ms", "command": "python -m bench.x",
                 "date": "2026-12-06", "machine": "2 cores", "quotes": {}},
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
        "| what | result | target | command | measured |",
        "| --- | --- | --- | --- | --- |",
        "| `make test` | 4 min 2 s |  | `make test` | 2026-12-07, 2 cores |",
        "| endpoint \\| p50 | 0.8 ms | ≤ 1 ms | `python -m bench.x` | 2026-12-06, 2 cores |",
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
    entry = entries["endpoint_cold_start"]
    assert entry["command"] == ".venv/bin/python -m bench.endpoint --requests 50"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", entry["date"]) and re.match(r"\d+ cores", entry["machine"])
    assert (entry["result"], entry["target"], entry["quotes"]) == ("0.31 s", "≤ 1 s", {"s": "0.31 s"})
    assert bench_results.duration_text(73.4) == "1 min 13 s" and bench_results.duration_text(42) == "42 s"
