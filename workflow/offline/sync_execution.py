"""StartSyncExecution offline, with its semantics, its output and its errors.

moto 5.2.5 does not serve StartSyncExecution (its API answers 404 "Not yet implemented", and botocore
sends the call to a `sync-states.` host moto does not match), but its interpreter has the class AWS's
semantics need: `SyncExecution` runs an execution to its end in the calling thread. This module builds
it as moto's own StartExecution builds an Execution, and answers as the service does: HTTP 200 with
{executionArn (the `express:` form), stateMachineArn, name, startDate, stopDate, status (SUCCEEDED |
FAILED | TIMED_OUT), input, inputDetails, output (on success), outputDetails, error, cause,
billingDetails}, whatever the execution did; an error status only for requests that cannot run:
an input over 262,144 characters or not JSON, an unknown machine, a STANDARD machine.

Timestamps are epoch seconds, as the AWS JSON protocol sends them (API Gateway's mapping templates see
the service's raw JSON).
"""

from __future__ import annotations

import copy
import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Any

from common.settings import OFFLINE_ACCOUNT, OFFLINE_REGION

MAX_INPUT_CHARACTERS = 262_144
MAX_NAME_CHARACTERS = 80


@dataclass
class ServiceError(Exception):
    """An error response of the Step Functions API: HTTP status, error type and message."""

    status: int
    error_type: str
    message: str

    def body(self) -> dict[str, str]:
        return {"__type": self.error_type, "message": self.message}


def _backend(account: str, region: str) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends[account][region]


def _validate(input_text: str, name: str) -> None:
    if len(input_text) > MAX_INPUT_CHARACTERS:
        raise ServiceError(400, "ValidationException",
                           "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                           f"Member must have length less than or equal to {MAX_INPUT_CHARACTERS}")
    if not 1 <= len(name) <= MAX_NAME_CHARACTERS:
        raise ServiceError(400, "ValidationException",
                           f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
                           f"Member must have length less than or equal to {MAX_NAME_CHARACTERS}")
    try:
        json.loads(input_text)
    except json.JSONDecodeError as error:
        raise ServiceError(400, "InvalidExecutionInput", f"Invalid State Machine Execution Input: '{error}'") from error


def start_sync_execution(state_machine_arn: str, input_text: str = "{}", name: str | None = None, *,
                         account: str = OFFLINE_ACCOUNT, region: str = OFFLINE_REGION) -> dict[str, Any]:
    """Run one execution of an EXPRESS machine to its end; return StartSyncExecution's response body."""
    from moto.stepfunctions.exceptions import StateMachineDoesNotExist
    from moto.stepfunctions.parser.backend.execution import SyncExecution

    name = name or str(uuid.uuid4())
    _validate(input_text, name)
    try:
        machine = _backend(account, region).describe_state_machine(state_machine_arn)
    except StateMachineDoesNotExist as error:
        raise ServiceError(400, "StateMachineDoesNotExist", f"State Machine Does Not Exist: '{state_machine_arn}'") \
            from error
    if getattr(machine, "type", "STANDARD") != "EXPRESS":
        raise ServiceError(400, "StateMachineTypeNotSupported",
                           "This operation is not supported by this type of state machine")
    snapshot = copy.deepcopy(machine, {id(machine.executions): [], id(machine.backend): machine.backend})
    arn = f"arn:aws:states:{region}:{account}:express:{machine.name}:{name}:{uuid.uuid4()}"
    execution = SyncExecution(
        name=name, sm_type=snapshot.sm_type, role_arn=snapshot.roleArn, exec_arn=arn, account_id=account,
        region_name=region, state_machine=snapshot, start_date=datetime.datetime.now(tz=datetime.UTC),
        cloud_watch_logging_session=None, activity_store={}, input_data=input_text,
    )
    execution.start()  # runs to the end in this thread
    return response_of(execution, state_machine_arn, input_text)


def response_of(execution: Any, state_machine_arn: str, input_text: str) -> dict[str, Any]:
    start, stop = execution.start_date, execution.stop_date or datetime.datetime.now(tz=datetime.UTC)
    response: dict[str, Any] = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": state_machine_arn,
        "name": execution.name,
        "startDate": start.timestamp(),
        "stopDate": stop.timestamp(),
        "status": str(getattr(execution.sync_execution_status, "value", execution.sync_execution_status or "FAILED")),
        "input": input_text,
        "inputDetails": {"included": True},
        "billingDetails": {"billedMemoryUsedInMB": 64,
                           "billedDurationInMilliseconds": max(100, int((stop - start).total_seconds() * 1000))},
    }
    if response["status"] == "SUCCEEDED":
        response["output"] = json.dumps(execution.output, separators=(",", ":"))
        response["outputDetails"] = {"included": True}
    if execution.error is not None:
        response["error"] = execution.error
    if execution.cause is not None:
        response["cause"] = execution.cause
    return response
