"""Offline IAM: every AWS call a function or a state machine makes is held to its role's policies, as on AWS.

On AWS each Lambda handler signs its calls with its execution role's credentials (the Lambda service puts them in
the function's environment) and each state machine's tasks run with the machine's role; IAM evaluates every call
against that role's policies before the service sees it. moto evaluates nothing, so offline a handler that reads
outside its prefixes would pass every test and fail only on AWS. This module closes that gap.

How. The roles are read from the template as CloudFormation receives it (common.sam_transform: SAM's generated
`<LogicalId>Role` with its inline policies, policy templates expanded), their intrinsics evaluated as the
deployment would (common.template.SamTemplate: parameters, bucket names, ARNs). Each role gets fake credentials
of its own; the runtime puts a function's in its environment (as Lambda does) and the Step Functions interpreter's
task clients are signed with the machine's (moto signs them all with one key). A botocore hook on every client the
runtime's process makes reads which credentials a call is signed with, describes the call as IAM would (action,
resource ARN, condition keys: `authorization_requests`) and evaluates it; when AWS would refuse, the call never
leaves the client: botocore's own parser reads the service's AccessDenied wire response (S3's XML `AccessDenied`
with status 403, the JSON services' `AccessDeniedException`), so a handler sees exactly the ClientError it would
see on AWS. A call signed with other credentials (the tests' and the CLI's own clients) is not evaluated, unless
it is made from inside a function's invocation (a client created there belongs to the function).

What is evaluated (workflow.offline.iam_policy, a documented subset of IAM's logic: docs/offline-runtime.md): the
role's inline (identity-based) policies, an explicit Deny winning over any Allow and neither refusing; and S3's
answer to a read of a missing key: 404 NoSuchKey only to a role that may list the bucket (s3:ListBucket without
s3:prefix in the request), 403 AccessDenied to any other, as the S3 API reference says.

What is refused because it cannot be evaluated here (never more forgiving than AWS): a statement or an operation
iam_policy cannot evaluate; the role's managed policies (ManagedPolicyArns: Lambda's basic execution and X-Ray
policies) are not read, so they grant nothing. Not modelled at all: resource policies (the stack declares no bucket
policy), permission boundaries, SCPs, session policies, KMS. Calls of the API's, the S3 trigger's and the
schedules' own roles are not evaluated (each makes one call its role allows: StartSyncExecution, StartExecution,
InvokeFunction).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3
from botocore import handlers as botocore_handlers
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.endpoint import convert_to_response_dict
from botocore.parsers import create_parser
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for as _MOTO_TASK_CLIENT

from common.settings import OFFLINE_ACCOUNT, OFFLINE_REGION
from common.template import SamTemplate, role_arn
from workflow.offline.iam_policy import (
    ALWAYS_ALLOWED,
    LIST_BUCKET_KEYS,
    Decision,
    Request,
    Statement,
    as_list,
    authorization_requests,
    evaluate,
)

logger = logging.getLogger(__name__)

# --- Roles and who is calling ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    logical_id: str
    arn: str
    statements: tuple[Statement, ...]
    managed_policies: tuple[str, ...] = ()  # listed, never read: they grant nothing offline


@dataclass(frozen=True)
class Identity:
    """A role's session: who signs the calls of one function or one state machine."""

    role: Role
    session: str
    access_key: str
    account: str = OFFLINE_ACCOUNT

    @property
    def principal_arn(self) -> str:
        return f"arn:aws:sts::{self.account}:assumed-role/{self.role.logical_id}/{self.session}"

    @property
    def environment(self) -> dict[str, str]:
        """What the Lambda service puts in a function's environment: its role's temporary credentials."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
                "AWS_SESSION_TOKEN": f"offline-iam-session-{self.session}"}


@dataclass(frozen=True)
class Denial:
    """A call AWS would refuse, and was refused offline."""

    principal: str  # the session's ARN
    action: str
    resource: str
    reason: str
    call: str  # service.Operation

    def __str__(self) -> str:
        return f"{self.principal} may not {self.action} on {self.resource} ({self.call}): {self.reason}"


FAKE_SECRET = "offline-iam-secret"  # noqa: S105 - a stand-in: moto accepts any secret, IAM here reads the key id
_acting = threading.local()
_ACTIVE: list[OfflineIam] = []
_ACTIVE_LOCK = threading.Lock()
_PARAMS = "offline_iam_params"
_IDENTITY = "offline_iam_identity"


_COLLECTORS: list[list[Denial]] = []


@contextmanager
def collected_denials() -> Iterator[list[Denial]]:
    """Every call any offline runtime of this process refuses meanwhile (a test holds a whole offline run, whose
    runtimes it cannot reach, to no denial at all)."""
    collected: list[Denial] = []
    with _ACTIVE_LOCK:
        _COLLECTORS.append(collected)
    try:
        yield collected
    finally:
        with _ACTIVE_LOCK:
            _COLLECTORS.remove(collected)


@contextmanager
def acting_as(identity: Identity | None) -> Iterator[None]:
    """Calls made by this thread meanwhile belong to `identity`, whatever credentials their client holds (a client a
    handler creates while it runs is the function's own)."""
    previous = getattr(_acting, "identity", None)
    _acting.identity = identity
    try:
        yield
    finally:
        _acting.identity = previous


def _identity_of(request_signer: Any) -> Identity | None:
    credentials = getattr(request_signer, "_credentials", None)  # what the call is signed with
    access_key = getattr(credentials, "access_key", None)
    with _ACTIVE_LOCK:
        active = list(reversed(_ACTIVE))
    for iam in active:
        if access_key in iam.by_key:
            return iam.by_key[access_key]
    identity: Identity | None = getattr(_acting, "identity", None)
    return identity


class OfflineIam:
    """The template's roles, enforced on the calls signed with their credentials while this context is entered."""

    def __init__(self, roles: Mapping[str, Role], account: str = OFFLINE_ACCOUNT) -> None:
        self.roles = dict(roles)
        self.account = account
        self.denials: list[Denial] = []
        self.by_key: dict[str, Identity] = {}
        self._token = secrets.token_hex(4).upper()
        self._lock = threading.Lock()
        self._stack = ExitStack()

    @classmethod
    def from_template(cls, template: SamTemplate, transformed: dict[str, Any]) -> OfflineIam:
        """Every AWS::IAM::Role of the transformed template, its intrinsics evaluated with `template`'s parameters."""
        resolver = SamTemplate(template.path, template.parameter_overrides, stack_name=template.stack_name,
                               document=transformed)
        roles = {}
        for logical_id, resource in transformed["Resources"].items():
            if resource.get("Type") != "AWS::IAM::Role":
                continue
            props = resource.get("Properties", {})
            statements = [Statement.parse(raw)
                          for policy in resolver.resolve(props.get("Policies", []))
                          for raw in as_list(policy.get("PolicyDocument", {}).get("Statement", []))]
            managed = tuple(str(arn) for arn in resolver.resolve(props.get("ManagedPolicyArns", [])))
            roles[logical_id] = Role(logical_id, role_arn(logical_id), tuple(statements), managed)
        return cls(roles)

    @staticmethod
    def role_of(transformed: dict[str, Any], logical_id: str) -> str | None:
        """The logical ID of the role a function (Role) or state machine (RoleArn) runs with, when it is one of the
        template's roles."""
        props = transformed["Resources"].get(logical_id, {}).get("Properties", {})
        reference = props.get("Role", props.get("RoleArn"))
        if isinstance(reference, dict) and "Fn::GetAtt" in reference:
            target = reference["Fn::GetAtt"]
            name = target[0] if isinstance(target, list) else str(target).split(".", 1)[0]
            return str(name)
        return None

    def identity(self, role_logical_id: str | None, session: str) -> Identity:
        """The credentials `session` signs with; a role the template does not declare has no permission at all."""
        role = self.roles.get(role_logical_id or "") or Role(role_logical_id or f"{session}-unknown-role",
                                                             f"arn:aws:iam::{self.account}:role/unknown", ())
        access_key = f"ASIAOFFLINE{self._token}{len(self.by_key):04d}"
        identity = Identity(role, session, access_key, self.account)
        self.by_key[access_key] = identity
        return identity

    def identity_for_role_arn(self, role_arn: str) -> Identity | None:
        """The session a state machine's tasks sign with, by the role ARN the machine was created with."""
        for identity in self.by_key.values():
            if identity.role.arn == role_arn:
                return identity
        return None

    # -- entering: the hooks ------------------------------------------------------------------------------------

    def __enter__(self) -> OfflineIam:
        _install_hooks()
        # Sessions made from now on carry the hooks (botocore copies BUILTIN_HANDLERS into each new session); the
        # default session is made anew, as moto's mock does at its start.
        self._stack.enter_context(mock.patch("boto3.DEFAULT_SESSION", None))
        with _ACTIVE_LOCK:
            _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        self._stack.close()

    # -- deciding -----------------------------------------------------------------------------------------------

    def decide(self, identity: Identity, service: str, operation: str, params: Mapping[str, Any],
               region: str) -> tuple[Request, Decision] | None:
        """The first request of this call that IAM refuses, with why; None when every one is allowed."""
        if (service, operation) in ALWAYS_ALLOWED:
            return None
        requests = authorization_requests(service, operation, params, region, self.account)
        if requests is None:
            request = Request(f"{service}:{operation}", "*")
            return request, Decision(False, False, f"offline IAM does not model {service}.{operation}: refused "
                                                   "rather than allowed (see workflow/offline/iam.py)")
        for request in requests:
            decision = evaluate(list(identity.role.statements), request)
            if not decision.allowed:
                return request, decision
        return None

    def record(self, identity: Identity, request: Request, reason: str, call: str) -> Denial:
        denial = Denial(identity.principal_arn, request.action, request.resource, reason, call)
        with self._lock:
            self.denials.append(denial)
        with _ACTIVE_LOCK:
            for collector in _COLLECTORS:
                collector.append(denial)
        logger.warning("offline IAM refused: %s", denial)
        return denial


# --- The wire: what AWS answers a refused call -------------------------------------------------------------------

DENIAL_STATUS = {"s3": (403, "AccessDenied"), "lambda": (403, "AccessDeniedException"),
                 "cloudwatch": (403, "AccessDenied")}  # others: 400 AccessDeniedException (their Common Errors)


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        if self._body:
            yield self._body


def denial_message(identity: Identity, request: Request, explicit: bool) -> str:
    """IAM's wording for same-account requests: `User: <arn> is not authorized to perform: <action> on resource:
    <arn> because no identity-based policy allows the <action> action` (IAM User Guide, troubleshoot access denied);
    S3 quotes the resource ARN (S3 User Guide, troubleshoot-403-errors)."""
    resource = f'"{request.resource}"' if request.action.startswith("s3:") else request.resource
    on = f" on resource: {resource}" if request.resource != "*" else ""
    because = ("with an explicit deny in an identity-based policy" if explicit
               else f"because no identity-based policy allows the {request.action} action")
    return f"User: {identity.principal_arn} is not authorized to perform: {request.action}{on} {because}"


def denial_response(model: Any, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    """The service's AccessDenied on the wire, read by botocore's own parser for the client's protocol."""
    service = model.service_model.service_name
    status, code = DENIAL_STATUS.get(service, (400, "AccessDeniedException"))
    protocol = getattr(model.service_model, "resolved_protocol", model.service_model.protocol)
    request_id = str(uuid.uuid4())
    headers: dict[str, str]
    if protocol == "rest-xml":
        headers = {"x-amz-request-id": request_id.replace("-", "")[:16].upper(), "x-amz-id-2": request_id,
                   "content-type": "application/xml"}
        body = b"" if model.http.get("method") == "HEAD" else (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{_xml(message)}</Message>'
            f"<RequestId>{headers['x-amz-request-id']}</RequestId><HostId>{request_id}</HostId></Error>").encode()
    elif protocol in {"json", "rest-json"}:
        headers = {"x-amzn-requestid": request_id, "x-amzn-errortype": code,
                   "content-type": "application/x-amz-json-1.1" if protocol == "json" else "application/json"}
        json_code = code
        if model.service_model.metadata.get("awsQueryCompatible") is not None:
            headers["x-amzn-query-error"] = f"{code};Sender"
            json_code = "AccessDeniedException"
        body = json.dumps({"__type": json_code, "message": message}).encode()
    elif protocol == "query":
        headers = {"x-amzn-requestid": request_id, "content-type": "text/xml"}
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
    else:  # a protocol this module does not write: botocore's parsed shape, without the wire
        http = AWSResponse("https://offline-iam.invalid/", status, HTTPHeaders(), _RawBody(b""))  # type: ignore[arg-type]
        return http, {"Error": {"Code": code, "Message": message},
                      "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": status, "HTTPHeaders": {}}}
    wire_headers = HTTPHeaders()
    for name, value in {**headers, "content-length": str(len(body))}.items():
        wire_headers[name] = value
    http = AWSResponse("https://offline-iam.invalid/", status, wire_headers, _RawBody(body))  # type: ignore[arg-type]
    parsed: dict[str, Any] = create_parser(protocol).parse(convert_to_response_dict(http, model), model.output_shape)
    return http, parsed


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# --- The botocore hooks ------------------------------------------------------------------------------------------

_installed = False
_install_lock = threading.Lock()


def _install_hooks() -> None:
    """Add the hooks to the handlers every new botocore session starts with (once per process, as moto adds its own;
    they do nothing while no OfflineIam is entered)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        botocore_handlers.BUILTIN_HANDLERS.extend([
            ("before-parameter-build", _remember_params),
            ("before-call", _before_call),
            ("after-call", _after_call),
        ])
        _installed = True


def _remember_params(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
    if _ACTIVE:
        context[_PARAMS] = dict(params)


def _owner(identity: Identity) -> OfflineIam | None:
    with _ACTIVE_LOCK:
        return next((iam for iam in reversed(_ACTIVE) if identity.access_key in iam.by_key), None)


def _before_call(model: Any, request_signer: Any, context: dict[str, Any], **_: Any) -> Any:
    if not _ACTIVE:
        return None
    identity = _identity_of(request_signer)
    iam = _owner(identity) if identity is not None else None
    if identity is None or iam is None:
        return None
    context[_IDENTITY] = identity
    service, operation = model.service_model.service_name, model.name
    refused = iam.decide(identity, service, operation, context.get(_PARAMS, {}),
                         str(context.get("client_region") or OFFLINE_REGION))
    if refused is None:
        return None
    request, decision = refused
    iam.record(identity, request, decision.reason, f"{service}.{operation}")
    return denial_response(model, denial_message(identity, request, decision.explicit))


def _after_call(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    """S3 tells a missing key (404) from a forbidden one (403) only to a caller that may list the bucket."""
    identity: Identity | None = context.get(_IDENTITY)
    if identity is None or model.service_model.service_name != "s3" or model.name not in {"GetObject", "HeadObject"}:
        return
    if getattr(http_response, "status_code", 0) != 404 or parsed.get("Error", {}).get("Code") == "NoSuchBucket":
        return
    iam = _owner(identity)
    if iam is None:
        return
    bucket = str(context.get(_PARAMS, {}).get("Bucket", ""))
    listing = Request("s3:ListBucket", f"arn:aws:s3:::{bucket}", {}, LIST_BUCKET_KEYS)
    decision = evaluate(list(identity.role.statements), listing)
    if decision.allowed:
        return
    iam.record(identity, listing, f"the object does not exist and {decision.reason}: S3 answers 403, not 404",
               f"s3.{model.name}")
    http, refused = denial_response(model, denial_message(identity, listing, decision.explicit))
    http_response.status_code = http.status_code
    parsed.clear()
    parsed.update(refused)


# --- The Step Functions interpreter's task clients ---------------------------------------------------------------


def task_client(region: str, service: str, state_credentials: Any = None) -> Any:
    """The client a Step Functions task calls its service with (moto's interpreter asks its `boto_client_for`,
    which moto_tuning routes here): moto's own client, signed with the access key "ak" whatever the machine, unless
    the execution's role (`state_credentials.role_arn`) is one of an entered OfflineIam's machines: then the same
    client signed with that role's credentials, so the machine's policies apply to its SDK integrations (S3
    putObject and listObjectsV2, EventBridge putEvents, startExecution, lambda:invoke)."""
    from moto.core.models import botocore_stubber

    moto_client = _MOTO_TASK_CLIENT(region=region, service=service)
    role_arn = getattr(state_credentials, "role_arn", None)
    with _ACTIVE_LOCK:
        active = list(reversed(_ACTIVE))
    identity = next((found for iam in active if role_arn and (found := iam.identity_for_role_arn(role_arn))), None)
    if identity is None:
        return moto_client
    where = {} if botocore_stubber.enabled else {"endpoint_url": moto_client.meta.endpoint_url}
    return boto3.client(service, region_name=region, aws_access_key_id=identity.access_key,  # type: ignore[call-overload]
                        aws_secret_access_key=FAKE_SECRET, config=moto_client.meta.config, **where)
