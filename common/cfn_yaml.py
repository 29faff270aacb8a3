"""Read a CloudFormation/SAM template from YAML, short-form intrinsics (!Ref, !Sub, ...) included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from common.errors import InputError


class TemplateError(InputError):
    """The template uses something the offline runtime cannot evaluate, or a parameter is invalid."""


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short forms (!Ref, !Sub, ...) into their long forms."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation/SAM template")
    return document
