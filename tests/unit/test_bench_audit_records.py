"""What bench.audit_sampling and bench.quality_scenario record is what the docs quote: the Measured rows' facts
(verdicts per rate, the assumed labelling rate, the worst class and misreading, each run's exit and alarm) and the
short numbers other pages quote (`<!-- measured:quality_scenario.as_trained_precision -->`)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import audit_sampling, quality_scenario
from bench.results import RESULTS_ENV


def test_audit_sampling_records_the_verdicts_and_says_the_labelling_rate_is_assumed(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "results.json"))
    monkeypatch.setattr("sys.argv", ["bench.audit_sampling", "--seeds", "2"])
    row = {"rate": 0.02, "mean_audits": 201.0, "mean_estimate": 0.965, "bias": -0.0002, "rmse": 0.0123,
           "interval_coverage": 0.96, "mean_interval_width": 0.053, "seeds": 2, "confident_decisions": 10000,
           "verdicts": {"degraded": 1, "ok": 0, "too few audits": 1}}
    result = {"test_images": 196, "confident_share": 0.4388, "true_precision": 0.9651, "target_precision": 0.99,
              "estimates": [row],
              "detect_drop_0.99_to_0.95": [{"power": 0.5, "audits": 14, "detected": 0.51,
                                            "false_alarm_at_before": 0.13}],
              "audits_for_a_verdict_of_ok_at_0.99": 381,
              "cost_per_million": [{"rate": 0.02, "audits": 8776, "reviewer_hours": 7.3, "cost": 182.83,
                                    "low_confidence_items": 561224, "added_to_the_review_work": 0.0156}]}
    audit_sampling.record_result(result, 20.0, 25.0, "ab" * 32)
    recorded = json.loads((tmp_path / "results.json").read_text())
    assert {recorded[name]["model_sha256"] for name in ("audit_sampling_estimate", "audit_sampling_detection",
                                                        "audit_sampling_cost")} == {"ab" * 32}
    estimate = recorded["audit_sampling_estimate"]
    assert estimate["what"] == (
        "live quality: the audit estimate against the true precision 0.9651 of the served model's confident "
        "decisions (43.9% of decisions) on 196 real held-out test images, 10,000 confident decisions resampled "
        "from them, each audited by the filter's own choice, 2 seeds")
    assert estimate["result"] == (
        "AuditRate 0.02: 201.0 audits, mean estimate 0.965 (bias -0.0002), RMSE 0.0123, the 95% Wilson interval "
        "held the truth in 96% of seeds, width 0.053, against the target 0.99: degraded in 1, ok in 0, too few "
        "audits in 1 of 2 seeds")
    assert estimate["command"] == ".venv/bin/python -m bench.audit_sampling --seeds 2 (statistics, not timing)"
    assert recorded["audit_sampling_detection"]["result"] == (
        "14 audits detect it with probability 0.5 (a model truly at 0.99 alarms 13.0% of the time); a verdict of "
        "ok at 0.99 needs 381 audits")
    cost = recorded["audit_sampling_cost"]
    assert cost["what"] == ("live quality: added reviewer cost per million classifications (43.9% confident; an "
                            "**assumed** 20 labels a minute and $25 an hour, not measured on people)")
    assert cost["result"] == ("AuditRate 0.02: 8,776 audits, 7.3 reviewer hours, $182.83, +1.6% on the 561,224 "
                              "low-confidence items")
    assert (estimate["quotes"], recorded["audit_sampling_detection"]["quotes"], cost["quotes"]) == (
        {"rmse": "RMSE 0.0123 at AuditRate 0.02"}, {"audits": "14 audits for a 50% chance"},
        {"cost": "$183 at AuditRate 0.02"})


def test_quality_scenario_records_each_runs_verdict_and_the_precision_the_docs_quote(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "results.json"))
    monkeypatch.setattr("sys.argv", ["bench.quality_scenario"])

    def run(name: str, review: int, audited: int, precision: float, interval: list[float], status: int,
            reason: str, alarm: str) -> quality_scenario.ScenarioRun:
        return quality_scenario.ScenarioRun(
            name, Path("m"), Path("o"), {"executions": 196, "review": review},
            {"audited": audited, "precision": precision, "precision_interval": interval, "exit_status": status,
             "reason": reason}, {"alarms": {"ModelQualityAlarm": {"state": alarm}}})

    runs = [run("as trained", 110, 86, 0.9651, [0.9024, 0.9881], 1, "degraded: worst class: bicycle", "ALARM"),
            run("motorcycle read as bicycle", 0, 196, 0.4388, [0.3711, 0.5087], 1,
                "degraded: motorcycle read as bicycle 110 times", "ALARM")]
    quality_scenario.record_runs(runs, 0.99, "cd" * 32)
    entry = json.loads((tmp_path / "results.json").read_text())["quality_scenario"]
    assert entry["model_sha256"] == "cd" * 32
    assert entry["result"] == (
        "as trained: 110 of 196 sent to review, 86 audited, precision 0.965 [0.902, 0.988]: exit 1 (degraded: "
        "worst class: bicycle), ModelQualityAlarm ALARM; motorcycle read as bicycle: 0 of 196 sent to review, "
        "196 audited, precision 0.439 [0.371, 0.509]: exit 1 (degraded: motorcycle read as bicycle 110 times), "
        "ModelQualityAlarm ALARM")
    assert entry["quotes"] == {"as_trained_precision": "0.965 [0.902, 0.988]",
                               "wrong_precision": "0.439 [0.371, 0.509]"}
    assert entry["what"].endswith("target precision 0.99")
    quality_scenario.record_runs(runs, 0.95, "cd" * 32)  # another target: its own row, the default's kept
    recorded = json.loads((tmp_path / "results.json").read_text())
    assert set(recorded) == {"quality_scenario", "quality_scenario_target_0_95"}


def test_the_docs_quote_the_audit_numbers_through_markers_never_typed():
    """Every short number the audit benchmarks record appears in the docs only inside its marker (the Measured
    table's rows are written whole from the file); monitoring.md quotes the scenario's precision that way."""
    import re

    from tools import measured

    results = measured.load()
    monitoring = (measured.REPO_ROOT / "docs" / "monitoring.md").read_text()
    assert ("<!-- measured:quality_scenario.as_trained_precision -->"
            f"{results['quality_scenario']['quotes']['as_trained_precision']}<!-- /measured -->") in monitoring
    for path in measured.documents():
        text = measured.TABLE.sub("", path.read_text())
        text = re.sub(r"<!-- measured:[a-z0-9_.]+ -->.*?<!-- /measured -->", "", text)
        for name, entry in results.items():
            if name.startswith(("audit_sampling", "quality_scenario")):
                for quote in entry["quotes"].values():
                    assert quote not in text, f"{path.name} types {name}'s {quote!r}: use its marker"
