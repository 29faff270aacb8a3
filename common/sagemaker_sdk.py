"""The project's one way into the SageMaker Python SDK (2.x): loaded and used quietly, with its telemetry off, and
never trusted with a lookup it would make through its own fixed endpoints.

Today the project asks the SDK for container image URIs only (`image_uris.retrieve`: offline, no AWS call, no
telemetry); every AWS call is a boto3 client from common.aws. Any other use goes through `session()` and `quiet()`
(tests/unit/test_sagemaker_sdk.py holds every product module to that).

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
  `session()` sets it to true (always: no command of the project makes a call that would send it, so it offers no
  switch to turn it on) and keeps every other default of the user's SDK config files.
- Endpoints: `Session.default_bucket()`, `Session.account_id()` and `get_execution_role()` ask STS on
  `sts_regional_endpoint(region)` (sagemaker/session.py), ignoring AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_STS and a
  profile's endpoint_url. The default bucket is common.buckets' (give it to `session(default_bucket=...)`), found
  with common.aws's clients, which honour every endpoint setting; the role is always given (--role, or the
  training job's).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any


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


def sdk_config(boto_session: Any) -> dict[str, Any]:
    """The user's SageMaker SDK defaults (the files the SDK reads, SAGEMAKER_*_CONFIG_OVERRIDE honoured), with
    telemetry opted out."""
    with quiet():
        from sagemaker.config import load_sagemaker_config

        config: dict[str, Any] = load_sagemaker_config(s3_resource=boto_session.resource("s3"))
    config.setdefault("SchemaVersion", "1.0")
    config.setdefault("SageMaker", {}).setdefault("PythonSDK", {}).setdefault("Modules", {})["TelemetryOptOut"] = True
    return config


def session(boto_session: Any, *, default_bucket: str | None = None) -> Any:
    """A `sagemaker.Session` on a boto3 session from common.aws.session (its region, profile and endpoints), with
    telemetry off. Give `default_bucket` (common.buckets.data_bucket's), so the SDK never looks it up
    through its own STS call; use it inside quiet() too."""
    config = sdk_config(boto_session)
    with quiet():
        import sagemaker

        return sagemaker.Session(boto_session=boto_session, sagemaker_config=config, default_bucket=default_bucket)
