"""Where moto answers differently from AWS in a way a caller can see, put AWS's answer back.

- Error codes: moto's Step Functions interpreter backend (moto.stepfunctions.parser, used when
  executions really run) raises the exceptions of parser/api.py. Each declares its error code as
  `code` and its status as `status_code`, but their base class (moto's AWSError) reads `TYPE` and
  `STATUS`, so a client sees an empty error code (`An error occurred () when calling the
  StartExecution operation`) where Step Functions says `InvalidExecutionInput`. Callers that act on
  the code (the S3 trigger's forwarder decides retry or dead-letter by it) must see AWS's code.
- StopExecution: on AWS a stopped execution ends ABORTED. moto marks it stopped, lets the task in
  flight return, and then lets that task's failure (a timeout, say) overwrite the stop, so the
  execution ends FAILED. A stop is kept final here. (moto still ends a stopped execution only once
  the state in flight returns, at most one attempt's TimeoutSeconds later; AWS ends it at once.)
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from moto.core.exceptions import AWSError
from moto.stepfunctions.parser import api
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped


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


@contextmanager
def stopped_executions_stay_aborted() -> Iterator[None]:
    """While active, a failure or timeout after StopExecution no longer turns the execution's end into FAILED."""
    set_error, set_timed_out = Environment.set_error, Environment.set_timed_out

    def unless_stopped(original: Any) -> Any:
        def guarded(self: Environment, *args: Any, **kwargs: Any) -> None:
            with self._state_mutex:  # an RLock: the original takes it again
                if isinstance(self._program_state, ProgramStopped):
                    return
                original(self, *args, **kwargs)
        return guarded

    with mock.patch.multiple(Environment, set_error=unless_stopped(set_error),
                             set_timed_out=unless_stopped(set_timed_out)):
        yield
