"""docs/deploy.md's parameter table is the template's Parameters: every name, in the template's order, with its
Default, so a parameter added, renamed or given a new default lands in the page that tells people how to deploy."""

from __future__ import annotations

import re

import pytest

from common.settings import REPO_ROOT, TEMPLATE_PATH
from common.template import load_template

DEPLOY = REPO_ROOT / "docs" / "deploy.md"
ROW = re.compile(r"^\| `(\w+)` \| (?:`([^`]*)`|\(empty\)) \| .+ \|$", re.MULTILINE)


def documented(page: str) -> list[tuple[str, str]]:
    """(name, default) of each row of the page's parameter table; `(empty)` is the empty string."""
    return [(name, default) for name, default in ROW.findall(page)]


def template_parameters() -> list[tuple[str, str]]:
    return [(name, str(spec.get("Default", ""))) for name, spec in load_template(TEMPLATE_PATH)["Parameters"].items()]


def test_the_deploy_page_lists_every_parameter_with_its_default():
    parameters = template_parameters()
    assert len(parameters) >= 20
    assert documented(DEPLOY.read_text()) == parameters


@pytest.mark.parametrize("change", [
    lambda page: page.replace("| `AuditRate` | `0.02` |", "| `AuditRate` | `0.05` |"),
    lambda page: re.sub(r"^\| `AuditBacklogHours`.*\n", "", page, flags=re.MULTILINE),
    lambda page: page.replace("| `EventBusName`", "| `EventBus`"),
])
def test_a_stale_row_is_seen(change):
    assert documented(change(DEPLOY.read_text())) != template_parameters()
