"""Where moto answers differently from AWS in a way a caller can see, put AWS's answer back.

moto's Step Functions interpreter backend (moto.stepfunctions.parser, used when executions really
run) raises the exceptions of parser/api.py. Each declares its error code as `code` and its status
as `status_code`, but their base class (moto's AWSError) reads `TYPE` and `STATUS`, so a client sees
an empty error code: `An error occurred () when calling the StartExecution operation: Invalid State
Machine Execution Input...`, where Step Functions says `InvalidExecutionInput`. Callers that act on the
code (the S3 trigger's forwarder decides retry or dead-letter by it) must see AWS's code.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from unittest import mock

from moto.core.exceptions import AWSError
from moto.stepfunctions.parser import api


@contextmanager
def step_functions_error_codes() -> Iterator[None]:
    """While active, every parser exception carries its declared error code and HTTP status."""
    with ExitStack() as stack:
        for _, kind in inspect.getmembers(api, inspect.isclass):
            code = kind.__dict__.get("code")
            if issubclass(kind, AWSError) and isinstance(code, str) and kind.TYPE is None:
                stack.enter_context(mock.patch.object(kind, "TYPE", code))
                stack.enter_context(mock.patch.object(kind, "STATUS", int(kind.__dict__.get("status_code", 400))))
        yield
