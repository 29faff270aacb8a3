"""IAM's decision on one call, offline: policy statements, what a call asks IAM for, and the evaluation.

A documented subset of IAM's policy evaluation logic (docs/offline-runtime.md), strict where it cannot follow IAM:
- statements: Effect, Action and Resource with IAM's wildcards (`*` any run of characters, `?` one; actions
  case-insensitive, resources not), Condition with the String* and Arn* operators and their IfExists forms;
- an applicable Deny refuses, else an applicable Allow allows, else the call is refused (implicit deny);
- a statement this module cannot evaluate (NotAction, NotResource, Principal, a policy variable, another operator, a
  condition key the request does not model) never allows, and in a Deny it refuses;
- `authorization_requests` describes a call as IAM sees it (action, resource ARN, condition keys) for the operations
  our functions and state machines make; any other operation has no description and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

# --- Policies ----------------------------------------------------------------------------------------------------

STRING_OPERATORS: dict[str, tuple[bool, bool, bool]] = {  # operator -> (negated, wildcards, ignore case)
    "StringEquals": (False, False, False),
    "StringNotEquals": (True, False, False),
    "StringEqualsIgnoreCase": (False, False, True),
    "StringNotEqualsIgnoreCase": (True, False, True),
    "StringLike": (False, True, False),
    "StringNotLike": (True, True, False),
    "ArnEquals": (False, True, False),  # IAM: ArnEquals and ArnLike both take wildcards
    "ArnLike": (False, True, False),
    "ArnNotEquals": (True, True, False),
    "ArnNotLike": (True, True, False),
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's matching: `*` any run of characters (`/` and `:` included), `?` one character, nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


@dataclass(frozen=True)
class Statement:
    """One policy statement; `unsupported` says why it cannot be evaluated offline (it then never grants)."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (operator, key, values)
    sid: str = ""
    unsupported: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        problems = [name for name in ("NotAction", "NotResource", "Principal", "NotPrincipal") if name in raw]
        effect = str(raw.get("Effect", ""))
        if effect not in {"Allow", "Deny"}:
            problems.append(f"Effect {effect!r}")
        actions = tuple(str(a) for a in as_list(raw.get("Action", [])))
        resources = tuple(str(r) for r in as_list(raw.get("Resource", [])))
        if any("${" in r for r in resources):
            problems.append("a policy variable in Resource")
        conditions = []
        for operator, block in (raw.get("Condition") or {}).items():
            for key, values in block.items():
                conditions.append((str(operator), str(key), tuple(str(v) for v in as_list(values))))
        for operator, _, values in conditions:
            if operator.removesuffix("IfExists") not in STRING_OPERATORS:
                problems.append(f"condition operator {operator}")
            if any("${" in v for v in values):
                problems.append("a policy variable in a condition")
        return cls(effect, actions, resources, tuple(conditions), str(raw.get("Sid", "")), "; ".join(problems))


@dataclass(frozen=True)
class Request:
    """One authorization request as IAM sees it: the action, the resource ARN and the request's condition keys.

    `keys` are the condition keys this kind of request has (present in `context` or absent from this request);
    a condition on any other key cannot be evaluated offline.
    """

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)
    keys: frozenset[str] = frozenset()


def _condition_holds(operator: str, key: str, values: tuple[str, ...], request: Request) -> bool | None:
    """True or False; None when it cannot be evaluated offline (a key the request model does not know)."""
    base = operator.removesuffix("IfExists")
    negated, wildcards, ignore_case = STRING_OPERATORS[base]
    if key not in request.keys:
        return None
    if key not in request.context:  # IAM: an absent key matches nothing; negated operators and IfExists then hold
        return operator.endswith("IfExists") or negated
    actual = request.context[key]
    if wildcards:
        matched = any(wildcard_match(value, actual, ignore_case=ignore_case) for value in values)
    else:
        matched = any((value.lower() == actual.lower()) if ignore_case else value == actual for value in values)
    return not matched if negated else matched


def statement_applies(statement: Statement, request: Request) -> bool | None:
    """Whether the statement matches the request: True, False, or None when it cannot be evaluated offline."""
    if statement.unsupported:
        return None
    if not any(wildcard_match(pattern, request.action, ignore_case=True) for pattern in statement.actions):
        return False
    if not any(wildcard_match(pattern, request.resource) for pattern in statement.resources):
        return False
    results = [_condition_holds(operator, key, values, request) for operator, key, values in statement.conditions]
    if False in results:
        return False
    return None if None in results else True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit: bool  # refused by a Deny statement (or one that could not be evaluated)
    reason: str


def evaluate(statements: list[Statement], request: Request) -> Decision:
    """IAM's identity-policy logic: an applicable Deny refuses, else an applicable Allow allows, else refused. A Deny
    that cannot be evaluated refuses; an Allow that cannot be evaluated does not allow."""
    verdicts = [(statement, statement_applies(statement, request)) for statement in statements]
    for statement, applies in verdicts:
        if statement.effect == "Deny" and applies is not False:
            why = f"Deny statement {statement.sid or '(no Sid)'}"
            return Decision(False, True, why if applies else f"{why} cannot be evaluated offline "
                                                             f"({statement.unsupported or 'a condition key'})")
    for statement, applies in verdicts:
        if statement.effect == "Allow" and applies:
            return Decision(True, False, f"allowed by {statement.sid or 'a statement without Sid'}")
    unknown = [f"{s.sid or '(no Sid)'}: {s.unsupported or 'a condition key the request does not model'}"
               for s, applies in verdicts if s.effect == "Allow" and applies is None]
    if unknown:
        return Decision(False, False, "no statement allows it; refused rather than guessed, because offline IAM "
                                      "cannot evaluate " + "; ".join(unknown))
    return Decision(False, False, "no statement allows it")


# --- What a call asks IAM for ------------------------------------------------------------------------------------

LIST_BUCKET_KEYS = frozenset({"s3:prefix", "s3:delimiter", "s3:max-keys"})
S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload", "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
}
ALWAYS_ALLOWED = {("sts", "GetCallerIdentity")}  # IAM: no permission is needed to ask who you are


def _s3_object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _function_arn(name: str, qualifier: str | None, region: str, account: str) -> str:
    if name.startswith("arn:"):
        arn = name
    elif ":function:" in name:  # 123456789012:function:name[:qualifier]
        arn = f"arn:aws:lambda:{region}:{name}"
    else:
        arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def _s3_requests(operation: str, params: Mapping[str, Any]) -> list[Request] | None:
    bucket = str(params.get("Bucket", ""))
    if operation in S3_OBJECT_ACTIONS:
        action = S3_OBJECT_ACTIONS[operation]
        if action == "s3:GetObject" and params.get("VersionId"):
            action = "s3:GetObjectVersion"
        return [Request(action, _s3_object(bucket, str(params.get("Key", ""))))]
    if operation == "DeleteObjects":
        return [Request("s3:DeleteObject", _s3_object(bucket, str(item.get("Key", ""))))
                for item in params.get("Delete", {}).get("Objects", [])]
    if operation == "CopyObject":
        source = params.get("CopySource")
        if isinstance(source, dict):
            source_bucket, source_key = str(source.get("Bucket", "")), str(source.get("Key", ""))
        else:
            source_bucket, _, source_key = unquote(str(source).lstrip("/").split("?", 1)[0]).partition("/")
        return [Request("s3:PutObject", _s3_object(bucket, str(params.get("Key", "")))),
                Request("s3:GetObject", _s3_object(source_bucket, source_key))]
    if operation in {"ListObjectsV2", "ListObjects"}:
        context = {key: str(params[name]) for key, name in (("s3:prefix", "Prefix"), ("s3:delimiter", "Delimiter"),
                                                             ("s3:max-keys", "MaxKeys")) if name in params}
        return [Request("s3:ListBucket", f"arn:aws:s3:::{bucket}", context, LIST_BUCKET_KEYS)]
    if operation == "HeadBucket":
        return [Request("s3:ListBucket", f"arn:aws:s3:::{bucket}", {}, LIST_BUCKET_KEYS)]
    return None


def authorization_requests(service: str, operation: str, params: Mapping[str, Any], region: str,
                           account: str) -> list[Request] | None:
    """What IAM evaluates for this call (every request must be allowed); None for a call this model does not know,
    which is then refused. Actions and resources as the Service Authorization Reference gives them."""
    if service == "s3":
        return _s3_requests(operation, params)
    if service == "cloudwatch" and operation == "PutMetricData":
        return [Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": str(params.get("Namespace", ""))},
                        frozenset({"cloudwatch:namespace"}))]
    if service == "events" and operation == "PutEvents":
        buses = {str(entry.get("EventBusName") or "default") for entry in params.get("Entries", [])} or {"default"}
        return [Request("events:PutEvents", bus if bus.startswith("arn:")
                        else f"arn:aws:events:{region}:{account}:event-bus/{bus}") for bus in sorted(buses)]
    if service == "sagemaker-runtime" and operation in {"InvokeEndpoint", "InvokeEndpointAsync"}:
        endpoint = str(params.get("EndpointName", "")).lower()  # SageMaker lower-cases endpoint ARNs
        return [Request(f"sagemaker:{operation}", f"arn:aws:sagemaker:{region}:{account}:endpoint/{endpoint}")]
    if service == "lambda" and operation in {"Invoke", "InvokeAsync"}:
        arn = _function_arn(str(params.get("FunctionName", "")), params.get("Qualifier"), region, account)
        return [Request("lambda:InvokeFunction", arn)]
    if service == "stepfunctions":
        if operation in {"StartExecution", "StartSyncExecution"}:
            return [Request(f"states:{operation}", str(params.get("stateMachineArn", "")))]
        if operation in {"DescribeExecution", "StopExecution", "GetExecutionHistory"}:
            return [Request(f"states:{operation}", str(params.get("executionArn", "")))]
    return None
