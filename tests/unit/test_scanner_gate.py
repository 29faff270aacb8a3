"""tools/scanner.py's verdict on checkov's findings: every finding explained in checkov-skips.yaml, no stale skip."""

from __future__ import annotations

import pytest

from tools.scanner import SKIPS, Finding, ScannerError, findings_of, judge, load_skips

SKIP_LIST = {"CKV_AWS_158": {"resources": "*", "reason": "logs are encrypted by default"},
             "CKV_AWS_115": {"resources": ["CheckDriftFunction"], "reason": "runs once an hour"}}


def test_listed_findings_pass_and_any_other_fails():
    findings = [Finding("CKV_AWS_158", "AnyLogGroup", "KMS"), Finding("CKV_AWS_115", "CheckDriftFunction", "limit"),
                Finding("CKV_AWS_115", "NewFunction", "limit"), Finding("CKV_AWS_999", "Thing", "new check")]
    verdict = judge(findings, SKIP_LIST)
    assert verdict.unexplained == findings[2:] and verdict.stale == [] and not verdict.ok


def test_a_skip_that_matches_no_finding_is_stale():
    verdict = judge([Finding("CKV_AWS_158", "AnyLogGroup", "KMS")], SKIP_LIST)
    assert (verdict.unexplained, verdict.stale, verdict.ok) == ([], [("CKV_AWS_115", "CheckDriftFunction")], False)


def test_the_report_names_each_resource_by_its_logical_id():
    report = [{"results": {"failed_checks": [{"check_id": "CKV_AWS_27", "check_name": "SQS encrypted",
                                              "resource": "AWS::SQS::Queue.AlarmDeadLetterQueue"}]}},
              {"results": {"failed_checks": []}}]
    assert findings_of(report) == [Finding("CKV_AWS_27", "AlarmDeadLetterQueue", "SQS encrypted")]


@pytest.mark.parametrize("text,message", [("CKV_AWS_1:\n  resources: '*'\n", "CKV_AWS_1 has no reason"),
                                          ("CKV_AWS_1:\n  reason: because\n", "must list its resources")])
def test_every_skip_gives_its_reason_and_its_resources(tmp_path, text, message):
    (tmp_path / "skips.yaml").write_text(text)
    with pytest.raises(ScannerError, match=message):
        load_skips(tmp_path / "skips.yaml")


def test_the_projects_skips_file_is_well_formed():
    skips = load_skips(SKIPS)
    assert skips and all(len(entry["reason"].split()) >= 10 for entry in skips.values())
