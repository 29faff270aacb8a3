"""Offline CloudFormation views of template.yaml, for cfn-lint in CI and for the IAM tests.

cfn-lint does not read the ASL file behind DefinitionUri, and does not check intrinsics inside SAM
policy templates; transforming with samtranslator (no AWS call) and wrapping the ASL in a plain
AWS::StepFunctions::StateMachine lets cfn-lint see both. Run `python -m tools.cfn OUT_DIR`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform

from common.cfn_yaml import load_template
from common.settings import REPO_ROOT, TEMPLATE_PATH
from common.template import SamTemplate

TEMPLATE = TEMPLATE_PATH
ASL = REPO_ROOT / "statemachine" / "image_classification.asl.json"
BATCH_ASL = REPO_ROOT / "statemachine" / "batch_classification.asl.json"


class OfflineManagedPolicyLoader:
    """samtranslator asks IAM for managed policy ARNs; the AWS-managed ones are predictable."""

    def load(self) -> dict[str, str]:
        names = ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSXRayDaemonWriteAccess",
                 "AWSLambdaRole", "CloudWatchLogsFullAccess"]
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in names}


def transformed_template(parameter_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template as CloudFormation receives it after `sam package`: code in S3, the ASL inline."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    document = load_template(TEMPLATE)
    for resource in document["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://packaged-artifacts/{props['CodeUri'].strip('/')}.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://packaged-artifacts/{props['ContentUri'].strip('/')}.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["Definition"] = json.loads((REPO_ROOT / props.pop("DefinitionUri")).read_text())
    return transform(document, parameter_values or {}, OfflineManagedPolicyLoader())  # type: ignore[arg-type]


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
