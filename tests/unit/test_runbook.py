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


FILTER = re.compile(r'--log-group-name "([^"]+)"\s*(?:\\\n\s*)?--filter-pattern \'([^\']+)\'')
# Some of the event types Step Functions logs at the ERROR level, the machines' LoggingConfiguration
# (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html, "Log levels").
ERROR_EVENTS = {"ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted", "TaskFailed", "TaskTimedOut",
                "FailStateEntered"}
FUNCTIONS = {"SerializeImageFunctionArn": "serialize_image", "ClassifyImageFunctionArn": "classify_image",
             "CheckDriftFunctionName": "check_drift", "CheckQualityFunctionName": "check_quality"}


def log_filter_problems(runbook: str) -> list[str]:
    """The `aws logs filter-log-events` of the runbook whose pattern matches nothing we log. A Lambda's unhandled
    error is the runtime's `[ERROR] Name: message` line in the text log format; its own records are the messages its
    handler logs; a state machine's failures are what the template's UnexpectedFailures metric filter counts."""
    unexpected = transformed_template()["Resources"]["StateMachineUnexpectedFailuresMetricFilter"]
    problems = []
    for group, pattern in FILTER.findall(runbook):
        if group.startswith("/aws/vendedlogs/states/"):
            types = set(re.findall(r'\$\.type = "(\w+)"', pattern))
            failures = {"ExecutionFailed", "ExecutionTimedOut"} & types  # the alarm's own count: its exact filter
            logged = bool(types) and types <= ERROR_EVENTS
            if pattern != unexpected["Properties"]["FilterPattern"] and (failures or not logged):
                problems.append(f"{group}: {pattern} is not the UnexpectedFailures metric filter")
            continue
        output = re.fullmatch(r"/aws/lambda/\$\(output (\w+)(?: \| cut -d: -f7)?\)", group)
        if not output or output.group(1) not in FUNCTIONS:
            problems.append(f"{group}: not one of our functions' log groups")
        elif pattern != '"[ERROR]"' and f"logger.info({pattern}," not in (
                REPO_ROOT / "functions" / FUNCTIONS[output.group(1)] / "app.py").read_text():
            problems.append(f"{group}: {pattern} is neither the runtime's error line nor a message the handler logs")
    return problems


def test_the_functions_log_in_the_text_format_the_error_filter_reads():
    resources = transformed_template()["Resources"].values()
    functions = [resource for resource in resources if resource["Type"] == "AWS::Lambda::Function"]
    assert len(functions) >= 6 and all("LoggingConfig" not in function["Properties"] for function in functions)


def test_each_log_filter_of_the_runbook_matches_what_is_logged():
    runbook = RUNBOOK.read_text()
    assert len(FILTER.findall(runbook)) == 8
    assert log_filter_problems(runbook) == []


@pytest.mark.parametrize(("old", "new", "problem"), [
    ("'\"[ERROR]\"' --start-time", "'\"errorType\"' --start-time",
     '/aws/lambda/$(output SerializeImageFunctionArn | cut -d: -f7): "errorType" is neither'),
    ("'\"drift checked\"'", "'\"drift\"'", '/aws/lambda/$(output CheckDriftFunctionName): "drift" is neither'),
    ('($.details.error != "LowConfidenceError")) || ', "", "/aws/vendedlogs/states/$STACK-$machine: { ("),
])
def test_a_log_filter_that_matches_nothing_we_log_is_named(old, new, problem):
    problems = log_filter_problems(RUNBOOK.read_text().replace(old, new, 1))
    assert len(problems) == 1 and problems[0].startswith(problem)
