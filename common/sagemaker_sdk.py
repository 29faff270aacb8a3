"""The SageMaker Python SDK (2.x), loaded and used quietly, with its telemetry off unless asked for, and the lookups
it would make through its own fixed endpoints done with this project's clients instead.

Why each piece (sagemaker 2.257, read in the installed package and in github.com/aws/sagemaker-python-sdk):

- Logging: importing `sagemaker.experiments._metrics` (which `Estimator.fit` does lazily) or
  `sagemaker.aws_batch.training_queued_job` calls `logging.basicConfig(level=INFO)`: from then on every INFO record
  of every library (the SDK's "Creating training-job", botocore's "Found endpoint for sts via ...") reaches stderr.
  `quiet()` keeps a handler on the root logger while the SDK runs, so that call does nothing, and takes away
  whatever handler the SDK adds; the command's own lines stay the only ones on the terminal.
- Telemetry (`sagemaker/telemetry/telemetry_logging.py`, `_telemetry_emitter`): every decorated call
  (`Estimator.fit`, `Model.deploy`, ...) sends a GET to `https://sm-pysdk-t-<region>.s3.<region>.amazonaws.com/
  telemetry?x-accountId=...`, a fixed host no endpoint setting redirects, and logs a traceback (`logger.exception`)
  when it cannot. Its switch is the SDK config's `SageMaker.PythonSDK.Modules.TelemetryOptOut`
  (`TELEMETRY_OPT_OUT_PATH`, sagemaker/config/config_schema.py), read from the session's `sagemaker_config`:
  `session()` sets it to true unless SCONES_SAGEMAKER_TELEMETRY=1, and keeps every other default of the user's SDK
  config files.
- Endpoints: `Session.default_bucket()`, `Session.account_id()` and `get_execution_role()` ask STS on
  `sts_regional_endpoint(region)` (sagemaker/session.py), ignoring AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_STS and a
  profile's endpoint_url. The default bucket is common.buckets' (give it to `session(default_bucket=...)`), the
  role `execution_role()`'s: both through common.aws's clients, which honour every endpoint setting.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

from common.errors import EnvironmentProblem

TELEMETRY_ENV = "SCONES_SAGEMAKER_TELEMETRY"  # "1": let the SDK send its telemetry (its own TelemetryOptOut applies)
# Where a SageMaker notebook instance or Studio app says which role it runs as (the SDK reads the same file).
NOTEBOOK_METADATA = Path("/opt/ml/metadata/resource-metadata.json")


class NoExecutionRoleError(EnvironmentProblem):
    """No SageMaker execution role can be derived from the caller: the message says what to pass."""


def telemetry_enabled() -> bool:
    return os.environ.get(TELEMETRY_ENV, "") not in {"", "0"}


@contextmanager
def quiet() -> Iterator[None]:
    """Run SDK code without its output reaching the terminal: the root logger keeps a handler during the block (so
    the SDK's `logging.basicConfig(level=INFO)` does nothing) and gets its level and handlers back afterwards; what
    the SDK prints (a waiting job's "Starting - Preparing the instances for training...") goes nowhere: stdout is
    for the command's results, and its progress is the command's to show."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")  # the v2 deprecation notice, twice, on import
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)  # "Not applying SDK defaults from ..." on stdout
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.addHandler(logging.NullHandler())
    try:
        with open(os.devnull, "w") as nowhere, redirect_stdout(nowhere):
            yield
    finally:
        for handler in [handler for handler in root.handlers if handler not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)


def load() -> ModuleType:
    """`import sagemaker`, quietly (for `sagemaker.image_uris.retrieve` and the like: call those inside quiet())."""
    with quiet():
        import sagemaker

    return sagemaker


def sdk_config(boto_session: Any) -> dict[str, Any]:
    """The user's SageMaker SDK defaults (the files the SDK reads, SAGEMAKER_*_CONFIG_OVERRIDE honoured), with
    telemetry opted out unless SCONES_SAGEMAKER_TELEMETRY=1."""
    with quiet():
        from sagemaker.config import load_sagemaker_config

        config: dict[str, Any] = load_sagemaker_config(s3_resource=boto_session.resource("s3"))
    if not telemetry_enabled():
        config.setdefault("SchemaVersion", "1.0")
        modules = config.setdefault("SageMaker", {}).setdefault("PythonSDK", {}).setdefault("Modules", {})
        modules["TelemetryOptOut"] = True
    return config


def session(boto_session: Any, *, default_bucket: str | None = None) -> Any:
    """A `sagemaker.Session` on a boto3 session from common.aws.session (its region, profile and endpoints), with
    telemetry off by default. Give `default_bucket` (common.buckets.data_bucket's), so the SDK never looks it up
    through its own STS call; use it inside quiet() too."""
    config = sdk_config(boto_session)
    with quiet():
        import sagemaker

        return sagemaker.Session(boto_session=boto_session, sagemaker_config=config, default_bucket=default_bucket)


def execution_role(boto_session: Any) -> str:
    """The SageMaker execution role of the caller, as `sagemaker.get_execution_role()` derives it, with common.aws's
    clients: the notebook's or Studio app's role when running in one, else the caller's role (an assumed-role ARN
    becomes the role's ARN, with its path from IAM GetRole). A user, not a role, is NoExecutionRoleError."""
    if NOTEBOOK_METADATA.is_file():
        role = json.loads(NOTEBOOK_METADATA.read_text()).get("ExecutionRoleArn")
        if role:
            return str(role)
    caller = str(boto_session.client("sts").get_caller_identity()["Arn"])
    assumed = re.match(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/", caller)
    if assumed is None:
        if ":role/" in caller:
            return caller
        raise NoExecutionRoleError(f"the caller ({caller}) is not a role SageMaker can assume: pass --role "
                                   "arn:aws:iam::<account>:role/<role> or set SAGEMAKER_ROLE_ARN")
    partition, account, name = assumed.groups()
    from botocore.exceptions import ClientError

    try:
        return str(boto_session.client("iam").get_role(RoleName=name)["Role"]["Arn"])  # with its path
    except ClientError as error:
        if error.response.get("Error", {}).get("Code", "") not in {"AccessDenied", "AccessDeniedException"}:
            raise
    # no iam:GetRole: the role without its path, as the SDK does (console-made roles live under service-role/)
    path = "service-role/" if "AmazonSageMaker-ExecutionRole" in name else ""
    return f"arn:{partition}:iam::{account}:role/{path}{name}"
