"""docs/cost.md's arithmetic is recomputed here from its inputs: the states each path enters in the ASL, the review
share bench/results.json quotes, the template's AuditRate and the page's prices. A changed ASL, parameter or
measurement, or a section that disagrees with another, fails here."""

from __future__ import annotations

import json
import re

from common.settings import REPO_ROOT, template_parameter_defaults
from tools.cfn import ASL
from tools.measured import load

COST = REPO_ROOT / "docs" / "cost.md"
TRANSITION = 0.025 / 1000
PER_MILLION = 10**6


def entered(definition: dict, *, audited: bool, review: bool) -> list[str]:
    """The states one execution enters: confident or sent to review (FilterLowConfidence's Catch), audited or not
    (AuditChosen's choice or its Default)."""
    states, name, path = definition["States"], definition["StartAt"], []
    while name:
        path.append(name)
        state = states[name]
        if review and any("LowConfidenceError" in catch["ErrorEquals"] for catch in state.get("Catch", [])):
            name = next(c["Next"] for c in state["Catch"] if "LowConfidenceError" in c["ErrorEquals"])
        elif state["Type"] == "Choice":
            name = state["Choices"][0]["Next"] if audited else state["Default"]
        else:
            name = state.get("Next")
    return path


def inputs() -> dict[str, float]:
    definition = json.loads(ASL.read_text())
    share = load()["workflow_throughput"]["quotes"]["review_share"]
    return {"classified": len(entered(definition, audited=False, review=False)),
            "audited": len(entered(definition, audited=True, review=False)),
            "review": len(entered(definition, audited=False, review=True)),
            "r": float(share.rstrip("%")) / 100, "a": float(template_parameter_defaults()["AuditRate"])}


def money(value: float) -> str:
    return f"${value:,.2f}"


def test_each_path_enters_the_states_the_page_lists():
    definition = json.loads(ASL.read_text())
    page = COST.read_text()
    assert entered(definition, audited=False, review=False) == [
        "SerializeImage", "ClassifyImage", "FilterLowConfidence", "PublishClassified", "AuditChosen", "Classified"]
    assert entered(definition, audited=True, review=False)[-3:] == ["PrepareAuditRecord", "RecordAudit", "Audited"]
    assert entered(definition, audited=False, review=True)[3:] == [
        "PrepareReviewRecord", "RecordForReview", "DescribeReview", "PublishNeedsReview", "LowConfidence"]
    values = inputs()
    rows = re.findall(r"^\| (classified, not audited|classified and audited|sent to review)[^|]* \| .* \| (\d+) \|$",
                      page, re.MULTILINE)
    assert [(name, int(count)) for name, count in rows] == [
        ("classified, not audited", values["classified"]), ("classified and audited", values["audited"]),
        ("sent to review", values["review"])]


def test_the_cost_per_million_follows_from_the_inputs():
    v = inputs()
    r, a = v["r"], v["a"]
    page = COST.read_text()
    transitions = (1 - r) * (v["classified"] * (1 - a) + v["audited"] * a) + v["review"] * r
    assert f"r = {r:.3f}" in page and f"`AuditRate` is a = {a}" in page
    assert f"= **{transitions:.2f} transitions**" in page
    shared = [3 * 0.20, 0.03875 * 0.0000166667 * PER_MILLION, 0.0004 * 1000, (r + (1 - r) * a) * 5.00, 1.00,
              r * 4 * 0.50]
    shared_total = sum(round(part, 2) for part in shared)
    for part in shared:
        assert f"| {money(part)} |" in page
    assert f"**{money(shared_total)}**" in page
    standard = transitions * PER_MILLION * TRANSITION
    assert f"| {transitions:.2f} × 10⁶ × $0.000025 | {money(standard)} |" in page
    standard_total = round(standard, 2) + shared_total
    express = 3.50 + 1.00 + round(PER_MILLION * 0.2 * 64 / 1024 * 0.00001667, 2)
    child_states = ((1 - r) * 1 + r * 4)
    batch = 25.00 + round(child_states * 25, 2) + (express - 3.50) + 0.01 + shared_total
    totals = [standard_total, express + shared_total, express + shared_total + 5.00, batch]
    assert f"**{money(standard_total)}**" in page
    assert f"**{money(totals[1])} for S3 locations; {money(totals[2])} for uploaded images**" in page
    assert f"= {child_states:.3f} × $25 | {money(child_states * 25)} |" in page
    assert f"**{money(batch)}**" in page
    summary = page.split("### Summary", 1)[1].split("##", 1)[0]
    assert re.findall(r"\$[\d,.]+", summary) == [money(totals[0]), money(totals[1]), money(totals[2]),
                                                 money(batch), f"${25.00 + express - 3.50 + shared_total:.0f}"]
    assert f"**{money(25.00 + express - 3.50 + shared_total)} per million**" in page
    assert f"{money(3600 * standard / PER_MILLION)} an hour per 1 image/s" in page


def test_the_instance_arithmetic_follows_from_the_measured_request_time():
    """The sizing numbers are the endpoint bench's quotes, derived from its p50 (never typed): re-measuring moves
    them all, and each is this arithmetic."""
    page = COST.read_text()
    quotes = load()["endpoint_wrk"]["quotes"]
    p50_ms = float(quotes["p50"].removesuffix(" ms"))
    per_process = round(1000 / p50_ms, -1)
    headroom = round(0.6 * per_process)
    assert (quotes["per_process"], quotes["headroom"]) == (f"{per_process:,.0f}", f"{headroom:,}")
    for rate in (10, 50, 1_000, 5_000):
        needed = -(-rate // headroom)
        assert (quotes[f"at_{rate}"], quotes[f"instances_{rate}"]) == (
            f"⌈{rate:,} / {headroom:,}⌉ = {needed}", str(max(2, needed)))
        assert f"<!-- measured:endpoint_wrk.at_{rate} -->" in page
        assert f"<!-- measured:endpoint_wrk.instances_{rate} -->" in page
    assert "**<!-- measured:endpoint_wrk.headroom -->" in page


def test_the_page_has_one_price_table():
    assert COST.read_text().count("| service | price | source") == 1
