"""A third-party scanner on the template as CloudFormation receives it: checkov, every finding explained or fatal.

checkov runs from its own virtual environment (.venv-checkov, made by `make install-checkov` from
constraints-checkov.txt: its pins conflict with ours) on the transformed template (`python -m tools.cfn`). Each
finding must be listed in checkov-skips.yaml, by check and resource, with the reason it does not apply to this
design; any other finding fails, and so does a listed skip that no longer matches a finding (the reason went
stale). Run `python -m tools.scanner build/cfn/transformed.json` (make validate does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.settings import REPO_ROOT

SKIPS = REPO_ROOT / "checkov-skips.yaml"
CHECKOV = Path(os.environ.get("CHECKOV_BIN", REPO_ROOT / ".venv-checkov" / "bin" / "checkov"))
ALL = "*"


class ScannerError(Exception):
    """checkov could not run, or its skips file is malformed."""


@dataclass(frozen=True)
class Finding:
    check: str
    resource: str  # the logical ID
    name: str


@dataclass(frozen=True)
class Verdict:
    unexplained: list[Finding]
    stale: list[tuple[str, str]]  # (check, resource) listed in the skips file that matched no finding

    @property
    def ok(self) -> bool:
        return not self.unexplained and not self.stale


def load_skips(path: Path = SKIPS) -> dict[str, dict[str, Any]]:
    """check id -> {"resources": [logical IDs] or "*", "reason": "..."}; every entry must give its reason."""
    document = yaml.safe_load(path.read_text()) or {}
    for check, entry in document.items():
        if not isinstance(entry, dict) or not str(entry.get("reason", "")).strip():
            raise ScannerError(f"{path.name}: {check} has no reason")
        resources = entry.get("resources")
        if resources != ALL and not (isinstance(resources, list) and resources):
            raise ScannerError(f"{path.name}: {check} must list its resources (logical IDs) or say '*'")
    return document


def findings_of(report: dict[str, Any] | list[dict[str, Any]]) -> list[Finding]:
    """The failed checks of checkov's JSON report (one framework: an object; several: a list of them)."""
    reports = report if isinstance(report, list) else [report]
    return [Finding(item["check_id"], item["resource"].rsplit(".", 1)[-1], item["check_name"])
            for one in reports for item in one.get("results", {}).get("failed_checks", [])]


def judge(findings: list[Finding], skips: dict[str, dict[str, Any]]) -> Verdict:
    used: set[tuple[str, str]] = set()
    unexplained = []
    for finding in findings:
        entry = skips.get(finding.check)
        resources = entry["resources"] if entry else []
        if resources == ALL or finding.resource in resources:
            used.add((finding.check, ALL if resources == ALL else finding.resource))
        else:
            unexplained.append(finding)
    listed = {(check, resource) for check, entry in skips.items()
              for resource in ([ALL] if entry["resources"] == ALL else entry["resources"])}
    return Verdict(unexplained, sorted(listed - used))


def run_checkov(template: Path, checkov: Path = CHECKOV) -> dict[str, Any] | list[dict[str, Any]]:
    if not checkov.exists():
        raise ScannerError(f"{checkov} not found: `make install-checkov` creates .venv-checkov")
    done = subprocess.run([str(checkov), "--file", str(template), "--framework", "cloudformation", "--output", "json",
                           "--quiet", "--skip-download", "--compact"],
                          capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1) or not done.stdout.strip():  # 1: findings; anything else: it broke
        raise ScannerError(f"checkov exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    report: dict[str, Any] | list[dict[str, Any]] = json.loads(done.stdout)
    return report


def main(argv: list[str]) -> int:
    template = Path(argv[0] if argv else "build/cfn/transformed.json")
    try:
        verdict = judge(findings_of(run_checkov(template)), load_skips())
    except ScannerError as error:
        print(f"ScannerError: {error}", file=sys.stderr)
        return 2
    for finding in verdict.unexplained:
        print(f"{finding.check} on {finding.resource}: {finding.name} (not in {SKIPS.name}: fix it, or list it "
              "there with the reason it does not apply)", file=sys.stderr)
    for check, resource in verdict.stale:
        print(f"{check} on {resource}: listed in {SKIPS.name} but no longer found: remove the entry",
              file=sys.stderr)
    if verdict.ok:
        print(f"checkov: no unexplained finding on {template}")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
