"""Offline CloudFormation views of template.yaml, for cfn-lint in CI and for the IAM tests.

cfn-lint does not read the ASL file behind DefinitionUri, and does not check intrinsics inside SAM
policy templates; transforming with samtranslator (no AWS call) and wrapping the ASL in a plain
AWS::StepFunctions::StateMachine lets cfn-lint see both. Run `python -m tools.cfn OUT_DIR`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from common import sam_transform
from common.settings import REPO_ROOT, TEMPLATE_PATH
from common.template import SamTemplate

TEMPLATE = TEMPLATE_PATH
ASL = REPO_ROOT / "statemachine" / "image_classification.asl.json"
BATCH_ASL = REPO_ROOT / "statemachine" / "batch_classification.asl.json"


def transformed_template(parameter_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template as CloudFormation receives it after `sam package`: code in S3, the ASL inline (one home:
    common.sam_transform, which the offline runtime's IAM reads too)."""
    return sam_transform.transformed_template(TEMPLATE, parameter_values)


def asl_wrapper_template() -> dict[str, Any]:
    """Each ASL file inline in a plain state machine, so cfn-lint validates it against the ASL schema.

    The DefinitionSubstitutions are the template's own, evaluated offline (`common.template`: function and state
    machine ARNs in the offline account, parameter defaults), one wrapper per ASL file: a key added to or dropped
    from the template is linted at once, with nothing here to keep in step.
    """
    machines: dict[Path, Any] = {}
    for spec in SamTemplate(TEMPLATE).state_machines().values():  # the STANDARD and EXPRESS machines share one ASL
        machines.setdefault(spec.definition_path, spec)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            spec.logical_id: {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/lint",
                    "Definition": json.loads(path.read_text()),
                    "DefinitionSubstitutions": spec.substitutions,
                },
            }
            for path, spec in machines.items()
        },
    }


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "transformed.json").write_text(json.dumps(transformed_template(), indent=2))
    (out / "asl_wrapper.json").write_text(json.dumps(asl_wrapper_template(), indent=2))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/cfn")
