"""Every alarm the stack creates has a runbook entry (docs/runbook.md), and every entry names an alarm that exists:
what it means, how to confirm it, what to do, and how to tell it is resolved."""

from __future__ import annotations

import re

import pytest

from common.settings import REPO_ROOT
from tools.cfn import transformed_template

RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
PARTS = ("**Means**", "**Confirm**", "**Do**", "**Resolved when**")


def entries(text: str) -> dict[str, str]:
    """Each `## Name` section of the runbook, by name."""
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {section.split("\n", 1)[0].strip(): section for section in sections}


def alarms() -> list[str]:
    """The logical IDs of the transformed template's CloudWatch alarms: what `sam deploy` creates."""
    resources = transformed_template()["Resources"]
    return sorted(name for name, resource in resources.items() if resource["Type"] == "AWS::CloudWatch::Alarm")


def missing_entries(runbook: str, alarm_names: list[str]) -> list[str]:
    """The alarms with no complete entry: a section named after the alarm holding each part, in order."""
    found = entries(runbook)
    problems = []
    for name in alarm_names:
        section = found.get(name)
        if section is None:
            problems.append(f"{name}: no '## {name}' section")
            continue
        positions = [section.find(part) for part in PARTS]
        if -1 in positions or positions != sorted(positions):
            problems.append(f"{name}: the section needs {', '.join(PARTS)}, in that order")
    return problems


def test_every_alarm_of_the_template_has_a_complete_runbook_entry():
    names = alarms()
    assert "UnexpectedFailuresAlarm" in names and len(names) >= 9
    assert missing_entries(RUNBOOK.read_text(), names) == []


def test_every_runbook_entry_names_an_alarm_of_the_template():
    assert sorted(entries(RUNBOOK.read_text())) == alarms()


@pytest.mark.parametrize(("change", "problem"), [
    (lambda text: text.replace("## CaptureMissingAlarm", "## Capture missing"), "CaptureMissingAlarm: no '## "),
    (lambda text: text.replace("**Resolved when**: new capture objects", "Resolved: new capture objects"),
     "CaptureMissingAlarm: the section needs"),
])
def test_a_missing_or_incomplete_entry_is_named(change, problem):
    problems = missing_entries(change(RUNBOOK.read_text()), alarms())
    assert len(problems) == 1 and problems[0].startswith(problem)
