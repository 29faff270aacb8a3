"""Read template.yaml the way CloudFormation would, for the offline runtime.

The offline runtime must run exactly what `sam deploy` deploys: the same handlers with the same
environment, and the ASL file with the same DefinitionSubstitutions. So nothing is copied out of the
template: functions, environments and substitutions are evaluated from it here, with parameter
defaults (or overrides, as `sam deploy --parameter-overrides` takes them) and fake account values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.cfn_yaml import TemplateError, load_template
from common.settings import OFFLINE_ACCOUNT, OFFLINE_REGION


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function, as the Lambda service would see it after deployment."""

    logical_id: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]

    @property
    def arn(self) -> str:
        return function_arn(self.logical_id)


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    definition_path: Path
    substitutions: dict[str, str]
    event_rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # EventBridgeRule events, resolved
    type: str = "STANDARD"
    name: str = ""  # the physical name: the Name property, else (offline) the logical ID

    def definition(self) -> str:
        """The ASL text with `${Key}` replaced, exactly as SAM's DefinitionSubstitutions do."""
        text = self.definition_path.read_text()
        missing = sorted(set(re.findall(r"\$\{(\w+)\}", text)) - set(self.substitutions))
        if missing:
            raise TemplateError(f"{self.definition_path} uses ${{{missing[0]}}} with no DefinitionSubstitutions entry")
        for key, value in self.substitutions.items():
            text = text.replace("${" + key + "}", value)
        return text


@dataclass(frozen=True)
class ApiSpec:
    """One AWS::Serverless::Api: its OpenAPI body (intrinsics evaluated), stage, binary types and authoriser."""

    logical_id: str
    stage: str
    definition: dict[str, Any]
    binary_media_types: list[str]
    default_authorizer: str | None
    throttle: tuple[float, int] | None = None  # the stage's (rate per second, burst) for every method, if set


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{OFFLINE_REGION}:{OFFLINE_ACCOUNT}:function:{name}"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{OFFLINE_ACCOUNT}:role/{name}"


def state_machine_arn(name: str) -> str:
    return f"arn:aws:states:{OFFLINE_REGION}:{OFFLINE_ACCOUNT}:stateMachine:{name}"


@dataclass
class SamTemplate:
    """Evaluates a SAM template's intrinsics offline, for the functions and state machines it declares."""

    path: Path
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    stack_name: str = "scones-offline"
    document: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Load `path`, unless a document (say, the template transformed to CloudFormation) is given."""
        self.document = self.document or load_template(self.path)
        self.root = self.path.parent
        self.parameters = self._resolve_parameters()
        self.conditions = {
            name: bool(self.resolve(expr)) for name, expr in self.document.get("Conditions", {}).items()
        }

    def _resolve_parameters(self) -> dict[str, str]:
        declared = self.document.get("Parameters", {})
        unknown = sorted(set(self.parameter_overrides) - set(declared))
        if unknown:
            raise TemplateError(f"unknown template parameter {unknown[0]!r}; declared: {', '.join(declared)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in self.parameter_overrides:
                value = str(self.parameter_overrides[name])
            elif "Default" in spec:
                value = str(spec["Default"])
            else:
                raise TemplateError(f"template parameter {name} has no default and no override")
            pattern = spec.get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, value):
                raise TemplateError(f"parameter {name}={value!r}: {spec.get('ConstraintDescription', pattern)}")
            allowed = spec.get("AllowedValues")
            if allowed and value not in [str(v) for v in allowed]:
                raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
            values[name] = value
        return values

    def _pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": OFFLINE_REGION,
            "AWS::AccountId": OFFLINE_ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def _ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        resource = self.document["Resources"].get(name)
        if resource is None:
            raise TemplateError(f"!Ref {name}: no such parameter or resource")
        if resource["Type"] in {"AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"}:
            return state_machine_arn(self._physical_name(name))
        return name  # functions, buckets, topics...: offline, the physical name is the logical ID

    def _physical_name(self, logical_id: str) -> str:
        """A resource's name property when it has one (Name in SAM; StateMachineName or FunctionName once
        transformed), else (offline) its logical ID."""
        props = self.document["Resources"][logical_id].get("Properties", {})
        name = next((props[key] for key in ("Name", "StateMachineName", "FunctionName") if key in props), None)
        return str(self.resolve(name)) if name is not None else logical_id

    def _get_att(self, name: str, attribute: str) -> str:
        resource = self.document["Resources"].get(name)
        if resource is None:
            raise TemplateError(f"!GetAtt {name}.{attribute}: no such resource")
        kind = resource["Type"]
        if kind in {"AWS::Serverless::Function", "AWS::Lambda::Function"} and attribute == "Arn":
            return function_arn(self._physical_name(name))
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return role_arn(name)
        if attribute == "Arn":
            service = kind.split("::")[1].lower()
            return f"arn:aws:{service}:{OFFLINE_REGION}:{OFFLINE_ACCOUNT}:{name}"
        if attribute == "Name":
            return self._physical_name(name)
        raise TemplateError(f"!GetAtt {name}.{attribute} is not supported offline")

    def _sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(variables[token])
            if "." in token:
                return self._get_att(*token.split(".", 1))
            return self._ref(token)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        """Evaluate the intrinsic functions in `value` (recursively)."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self._get_att(arg[0], arg[1])
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                return self.resolve(arg[1] if self.conditions[arg[0]] else arg[2])
            if key == "Fn::Equals":
                left, right = self.resolve(arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Join":
                return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
            if key == "Condition":
                return self.conditions[arg]
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported offline")
        return {k: self.resolve(v) for k, v in value.items()}

    def resources_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.document["Resources"].items() if r.get("Type") == kind}

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = self.document.get("Globals", {}).get("Function", {})
        specs = {}
        for logical_id, resource in self.resources_of_type("AWS::Serverless::Function").items():
            props = {**globals_, **resource.get("Properties", {})}
            environment = {
                **globals_.get("Environment", {}).get("Variables", {}),
                **resource.get("Properties", {}).get("Environment", {}).get("Variables", {}),
            }
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_dir=(self.root / props["CodeUri"]).resolve(),
                handler=props["Handler"],
                runtime=props.get("Runtime", ""),
                timeout=int(props.get("Timeout", 3)),
                memory_size=int(props.get("MemorySize", 128)),
                environment={k: str(v) for k, v in self.resolve(environment).items()},
            )
        return specs

    def state_machine(self, logical_id: str | None = None) -> StateMachineSpec:
        machines = self.resources_of_type("AWS::Serverless::StateMachine")
        if logical_id is None:
            if len(machines) != 1:
                raise TemplateError(f"name one state machine of {sorted(machines)}")
            logical_id = next(iter(machines))
        if logical_id not in machines:
            raise TemplateError(f"no state machine {logical_id!r}; the template declares {sorted(machines)}")
        props = machines[logical_id]["Properties"]
        substitutions = self.resolve(props.get("DefinitionSubstitutions", {}))
        rules = {f"{logical_id}{name}": self.resolve(event["Properties"])
                 for name, event in props.get("Events", {}).items() if event.get("Type") == "EventBridgeRule"}
        return StateMachineSpec(
            logical_id=logical_id,
            definition_path=(self.root / props["DefinitionUri"]).resolve(),
            substitutions={k: str(v) for k, v in substitutions.items()},
            event_rules=rules,
            type=str(props.get("Type", "STANDARD")),
            name=self._physical_name(logical_id),
        )

    def state_machines(self) -> dict[str, StateMachineSpec]:
        return {logical_id: self.state_machine(logical_id)
                for logical_id in self.resources_of_type("AWS::Serverless::StateMachine")}

    def api(self, logical_id: str) -> ApiSpec:
        resource = self.resources_of_type("AWS::Serverless::Api").get(logical_id)
        if resource is None:
            raise TemplateError(f"no AWS::Serverless::Api {logical_id!r} in {self.path}")
        props = resource["Properties"]
        return ApiSpec(
            logical_id=logical_id,
            stage=str(self.resolve(props["StageName"])),
            definition=self.resolve(props["DefinitionBody"]),
            binary_media_types=[str(t).replace("~1", "/") for t in self.resolve(props.get("BinaryMediaTypes", []))],
            default_authorizer=props.get("Auth", {}).get("DefaultAuthorizer"),
            throttle=next(((float(self.resolve(m["ThrottlingRateLimit"])), int(self.resolve(m["ThrottlingBurstLimit"])))
                           for m in props.get("MethodSettings", [])
                           if m.get("ResourcePath") == "/*" and m.get("HttpMethod") == "*"
                           and "ThrottlingRateLimit" in m and "ThrottlingBurstLimit" in m), None),
        )
