"""Make moto 5.2.5's Step Functions interpreter behave as AWS where the batch and the API depend on it.

moto_tuning.py makes the interpreter cheaper without changing what it does; these patches change what
it does, each where moto differs from AWS in a way our state machines would notice (every difference
found by running the interpreter, see tests/unit/test_moto_fidelity.py):

1. `states:startExecution.sync` / `.sync:2`: moto passes the ASL's parameter names (StateMachineArn,
   Input, Name) to boto3 unchanged, so every child start fails with a KeyError ('StateMachineArn'),
   and then looks for `ExecutionArn` in boto3's `executionArn` response. The SFN service model maps
   one casing onto the other, as AWS's integration does; describe dates become epoch milliseconds (as
   in the integration's output on AWS) instead of datetimes, which moto's DescribeExecution cannot
   serialise.
2. The Map ItemReader `s3:listObjectsV2` read only the first page (1,000 keys: the 1,001st object of
   a prefix was silently never processed), failed on an empty prefix (KeyError 'Contents'), and gave
   boto3's items (`ETag`, a datetime). It now reads every page, an empty prefix gives no items, and
   each item has AWS's shape: {Etag, Key, LastModified (epoch seconds), Size, StorageClass}.
3. The Map ResultWriter wrote only a manifest listing no files and dropped every result. It now
   writes what AWS writes under <Prefix>/<map run id>/: SUCCEEDED_0.json and FAILED_0.json (each a
   JSON array of child executions with ExecutionArn, Input and Output or Error/Cause as JSON strings,
   Status, dates) and manifest.json naming them with their sizes.

4. ListMapRuns on an execution whose worker has not started yet, and DescribeMapRun while any
   execution of the account is in that state, raised AttributeError (an HTTP 500): such executions
   now have no Map Run, as on AWS.

5. Error codes: the interpreter backend's exceptions (parser/api.py) declare their code as `code` and
   their status as `status_code`, but moto's AWSError reads `TYPE` and `STATUS`, so a client saw an
   empty error code where Step Functions says `InvalidExecutionInput`; the S3 trigger's forwarder
   decides retry or dead-letter by that code.
6. StopExecution: on AWS a stopped execution ends ABORTED; moto let the task in flight overwrite the
   stop with its own failure (FAILED). A stop is kept final. (moto still ends a stopped execution only
   once the state in flight returns, at most one attempt's TimeoutSeconds later; AWS ends it at once.)

7. ToleratedFailurePercentage and ToleratedFailureCount were parsed but never applied: a Distributed Map
   whose every item failed still succeeded. As on AWS, the Map Run now fails with
   `States.ExceedToleratedFailureThreshold` ("The specified tolerated failure threshold was exceeded") once
   its failed or timed-out items exceed either threshold (a percentage of all the Map Run's items; with
   neither set, any failure), and starts no further item. A threshold of 0 counts as not set when the other
   one is set (the interpreter keeps no trace of which field the ASL declared).

Left as moto has it (documented in docs/doors.md): Map child workflows are evaluated in threads, not as
separate executions; a failed Map Run writes no ResultWriter files.
"""

from __future__ import annotations

import datetime
import inspect
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast
from unittest import mock

import botocore.session
from moto.core.exceptions import AWSError
from moto.stepfunctions.parser import api
from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails, ResourceNotFound
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import (
    resource_eval_s3 as item_reader_s3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker as item_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
    resource_eval_s3 as result_writer_s3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError, ProgramStopped
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

_SFN_MODEL = botocore.session.get_session().get_service_model("stepfunctions")
_SFN_OPERATIONS = {botocore.xform_name(name): _SFN_MODEL.operation_model(name) for name in _SFN_MODEL.operation_names}


def _epoch_millis(value: Any) -> Any:
    return int(value.timestamp() * 1000) if isinstance(value, datetime.datetime) else value


def _sfn_parameters(self: StateTaskServiceSfn, parameters: dict[str, Any], boto_service_name: str | None = None,
                    service_action_name: str | None = None) -> None:
    action = self._get_boto_service_action(service_action_name)
    if action == "start_execution" and not isinstance(parameters.get("Input"), str):
        parameters["Input"] = json.dumps(parameters.get("Input") or {}, separators=(",", ":"))
    self._to_boto_request(parameters, _SFN_OPERATIONS[action].input_shape)


def _sfn_response(self: StateTaskServiceSfn, response: Any, boto_service_name: str | None = None,
                  service_action_name: str | None = None) -> None:
    action = self._get_boto_service_action(service_action_name)
    self._from_boto_response(response, _SFN_OPERATIONS[action].output_shape)
    if isinstance(response, dict):
        for key, value in list(response.items()):
            response[key] = _epoch_millis(value)


def _list_objects_v2(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    s3 = item_reader_s3.ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part,
                                                      state_credentials=state_credentials)
    parameters = env.stack.pop()
    items = []
    for page in s3.get_paginator("list_objects_v2").paginate(**parameters):
        for item in page.get("Contents", []):
            items.append({"Etag": item["ETag"], "Key": item["Key"],
                          "LastModified": int(item["LastModified"].timestamp()), "Size": item["Size"],
                          "StorageClass": item.get("StorageClass", "STANDARD")})
    env.stack.append(items)


class MapRunResults:
    """What each Map Run's child workflows did, in the order they ended, for the ResultWriter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, list[dict[str, Any]]] = {}

    def add(self, map_run_arn: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._runs.setdefault(map_run_arn, []).append(entry)

    def take(self, map_run_arn: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._runs.pop(map_run_arn, [])


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _recording_eval_job(results: MapRunResults, original: Any) -> Any:
    def _eval_job(self: Any, env: Any, job: Any) -> None:
        started = datetime.datetime.now(datetime.UTC)
        original(self, env, job)
        map_run_arn = self._map_run_record.map_run_arn
        name = str(uuid.uuid4())
        entry: dict[str, Any] = {
            "ExecutionArn": f"{map_run_arn.replace(':mapRun:', ':execution:')}:{name}",
            "Input": json.dumps(job.job_input, separators=(",", ":")),
            "InputDetails": {"Included": True},
            "Name": name,
            "StartDate": _iso(started),
            "StateMachineArn": map_run_arn.rsplit(":", 1)[0].replace(":mapRun:", ":stateMachine:"),
            "StopDate": _iso(datetime.datetime.now(datetime.UTC)),
        }
        state = env.program_state()
        if isinstance(state, ProgramEnded) or (job.job_output is not None and not isinstance(state, ProgramError)):
            entry.update(Status="SUCCEEDED", Output=json.dumps(job.job_output, separators=(",", ":")),
                         OutputDetails={"Included": True})
        else:
            error = (state.error or {}) if isinstance(state, ProgramError) else {}
            entry.update(Status="FAILED", Error=error.get("error", "States.Runtime"), Cause=error.get("cause", ""))
        results.add(map_run_arn, entry)

    return _eval_job


EXCEEDED_THRESHOLD_CAUSE = "The specified tolerated failure threshold was exceeded"


def tolerance_exceeded(failed: int, total: int, count: int, percentage: float) -> bool:
    """Whether `failed` of `total` items exceed the Map's ToleratedFailureCount / ToleratedFailurePercentage
    (either; with neither set, any failure)."""
    if not count and not percentage:
        return failed > 0
    return bool(count and failed > count) or bool(percentage and total and failed * 100 / total > percentage)


def _tolerance_eval_job(original: Any) -> Any:
    """After each item: past the Map's failure tolerance, the Map Run fails (the job pool starts no more)."""
    def _eval_job(self: Any, env: Any, job: Any) -> None:
        original(self, env, job)
        record = self._map_run_record
        failed = record.item_counter.failed.get() + record.item_counter.timed_out.get()
        total = self._job_pool._jobs_number
        if not tolerance_exceeded(failed, total, record.tolerated_failure_count, record.tolerated_failure_percentage):
            return
        error = StatesErrorNameType.StatesExceedToleratedFailureThreshold
        details = MapRunFailedEventDetails(error=error.to_name(), cause=EXCEEDED_THRESHOLD_CAUSE)
        job.job_output = FailureEventException(FailureEvent(
            env=self._env, error_name=StatesErrorName(typ=error), event_type=HistoryEventType.MapRunFailed,
            event_details=cast(EventDetails, {"mapRunFailedEventDetails": details})))  # a total=True TypedDict

    return _eval_job


def _writing_put_object(results: MapRunResults) -> Any:
    def _handle_put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        env.stack.pop()  # the Map's outputs: the entries recorded per child workflow say more
        s3 = result_writer_s3.ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part,
                                                            state_credentials=state_credentials)
        map_run_arn = env.map_run_record_pool_manager.get_all()[-1].map_run_arn
        prefix = parameters.get("Prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        folder = f"{prefix}{map_run_arn.split(':')[-1]}/"
        entries = results.take(map_run_arn)
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status in ("SUCCEEDED", "FAILED"):
            chosen = [entry for entry in entries if entry["Status"] == status]
            if chosen:
                body = json.dumps(chosen).encode()
                key = f"{folder}{status}_0.json"
                s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=body)
                files[status].append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": map_run_arn, "ResultFiles": files}
        key = f"{folder}manifest.json"
        s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=json.dumps(manifest, indent=2).encode())
        details = {"Bucket": parameters["Bucket"], "Key": key}
        env.stack.append({"MapRunArn": map_run_arn, "ResultWriterDetails": details})

    return _handle_put_object


def _environment(execution: Any) -> Any:
    return getattr(getattr(execution, "exec_worker", None), "env", None)


def _list_map_runs(self: StepFunctionsParserBackend, execution_arn: str) -> dict[str, Any]:
    env = _environment(self.describe_execution(execution_arn=execution_arn))
    records = env.map_run_record_pool_manager.get_all() if env is not None else []
    return {"mapRuns": [record.list_item() for record in records]}


def _describe_map_run(self: StepFunctionsParserBackend, map_run_arn: str) -> dict[str, Any]:
    for execution in self._get_executions():
        env = _environment(execution)
        record = env.map_run_record_pool_manager.get(map_run_arn) if env is not None else None
        if record is not None:
            description: dict[str, Any] = record.describe()
            return description
    raise ResourceNotFound(f"Resource not found: {map_run_arn!r}")


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


@contextmanager
def faithful_interpreter() -> Iterator[MapRunResults]:
    """Apply the patches for the duration of the block (the offline runtime's lifetime)."""
    results = MapRunResults()
    worker = item_worker.DistributedItemProcessorWorker
    patches = [
        mock.patch.multiple(StateTaskServiceSfn, _normalise_parameters=_sfn_parameters,
                            _normalise_response=_sfn_response),
        mock.patch.object(item_reader_s3.ResourceEvalS3, "_handle_list_objects_v2", staticmethod(_list_objects_v2)),
        mock.patch.object(result_writer_s3.ResourceEvalS3, "_handle_put_object",
                          staticmethod(_writing_put_object(results))),
        mock.patch.object(worker, "_eval_job", _tolerance_eval_job(_recording_eval_job(results, worker._eval_job))),
        mock.patch.multiple(StepFunctionsParserBackend, list_map_runs=_list_map_runs,
                            describe_map_run=_describe_map_run),
    ]
    with ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        stack.enter_context(step_functions_error_codes())
        stack.enter_context(stopped_executions_stay_aborted())
        yield results
