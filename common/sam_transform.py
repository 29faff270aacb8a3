"""template.yaml as CloudFormation receives it: the SAM transform, run offline.

`sam deploy` sends the template through the AWS::Serverless transform, which turns each function's and state
machine's `Policies` (policy templates such as LambdaInvokePolicy included) into the inline policies of a generated
`<LogicalId>Role`. samtranslator is that transform's own code and runs without AWS; what it produces is what IAM
holds each role to, so the IAM tests and the offline runtime's IAM (workflow.offline.iam) read the roles from here,
never from a copy.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from common.cfn_yaml import load_template
from common.environ import patched_environ
from common.settings import OFFLINE_REGION, TEMPLATE_PATH

# samtranslator warns on every transform about a feature toggle it does not know: noise for us.
logging.getLogger("samtranslator.feature_toggle").setLevel(logging.ERROR)


class OfflineManagedPolicyLoader:
    """samtranslator asks IAM for managed policy ARNs; the AWS-managed ones are predictable."""

    def load(self) -> dict[str, str]:
        names = ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSXRayDaemonWriteAccess",
                 "AWSLambdaRole", "CloudWatchLogsFullAccess"]
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in names}


def transformed_template(template_path: Path = TEMPLATE_PATH,
                         parameter_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template as CloudFormation receives it after `sam package`: code in S3, each ASL file inline.

    A fresh copy on each call (callers may change it); the transform itself runs once per template text and
    parameter values.
    """
    source = template_path.read_text()
    definitions = tuple((uri, (template_path.parent / uri).read_text())
                        for uri in re.findall(r"DefinitionUri:\s*(\S+)", source))
    values = json.dumps(parameter_values or {}, sort_keys=True)
    return copy.deepcopy(_transformed(str(template_path.resolve()), source, definitions, values))


@functools.lru_cache(maxsize=16)
def _transformed(path: str, source: str, definitions: tuple[tuple[str, str], ...],
                 parameter_values: str) -> dict[str, Any]:
    """`definitions` (each DefinitionUri's text) are part of the cache key: an edited ASL file is transformed anew."""
    from samtranslator.translator.transform import transform

    root = Path(path).parent
    document = load_template(Path(path))
    for resource in document["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://packaged-artifacts/{props['CodeUri'].strip('/')}.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://packaged-artifacts/{props['ContentUri'].strip('/')}.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["Definition"] = json.loads(dict(definitions).get(props["DefinitionUri"])
                                             or (root / props["DefinitionUri"]).read_text())
            props.pop("DefinitionUri")
    # samtranslator reads the region for ARNs' partition: lent for the call only, the process keeps its own
    with patched_environ({"AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or OFFLINE_REGION}):
        result: dict[str, Any] = transform(document, json.loads(parameter_values),  # type: ignore[arg-type]
                                           OfflineManagedPolicyLoader())
    return result
