"""checkov (its own venv, as CI runs it) on the transformed template plus one deliberately bad resource: every
finding on the real template is explained in checkov-skips.yaml, and the new resource's finding fails the gate."""

from __future__ import annotations

import json

import pytest

from tools.cfn import transformed_template
from tools.scanner import CHECKOV, main

pytestmark = pytest.mark.skipif(not CHECKOV.exists(), reason="no .venv-checkov: `make install-checkov` (CI does)")


def test_an_unexplained_finding_fails_and_names_itself(tmp_path, capsys):
    template = transformed_template()
    template["Resources"]["DeliberatelyBadQueue"] = {"Type": "AWS::SQS::Queue",
                                                     "Properties": {"SqsManagedSseEnabled": False}}
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(template))

    status = main([str(path)])

    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert [line.split(":")[0] for line in lines] == ["CKV_AWS_27 on DeliberatelyBadQueue"]
