"""An endpoint that stalls: the offline run reports each execution's real end, or stops it and says so; it never
tears the services down under a running execution.

The stand-in endpoint is a socket on 127.0.0.1 that accepts requests and never answers. The state
machine is the real ASL with ClassifyImage's TimeoutSeconds cut to 2 s, so the real end (States.Timeout)
comes in seconds rather than a minute.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from common.settings import REPO_ROOT, TEMPLATE_PATH, staged_dataset_key
from data_prep.dataset import transform
from testkit.images import labelled_folder
from tests.support import wait_until
from workflow.offline.runtime import OfflineRuntime
from workflow.offline_run import execute_test_images

CLASSIFY_TIMEOUT_S = 2
HELD_S = 3600  # a ClassifyImage timeout no test reaches: the execution ends when the test says so


class StallingEndpoint:
    """Accepts connections and reads requests, answers nothing until released."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.connections: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def release(self) -> None:
        """Cut every held connection: a Lambda still waiting for an answer fails at once."""
        for connection in self.connections:
            connection.close()
        self.connections.clear()

    def close(self) -> None:
        self.release()
        self.listener.close()


def scaled_template(tmp: Path, classify_timeout_s: int = CLASSIFY_TIMEOUT_S) -> Path:
    """template.yaml with ClassifyImage's TimeoutSeconds changed, everything else as shipped."""
    definition = json.loads((REPO_ROOT / "statemachine/image_classification.asl.json").read_text())
    definition["States"]["ClassifyImage"]["TimeoutSeconds"] = classify_timeout_s
    (tmp / "asl.json").write_text(json.dumps(definition))
    text = TEMPLATE_PATH.read_text()
    text = text.replace("CodeUri: functions/", f"CodeUri: {REPO_ROOT}/functions/")
    text = text.replace("ContentUri: layers/", f"ContentUri: {REPO_ROOT}/layers/")
    text = text.replace("DefinitionUri: statemachine/image_classification.asl.json", f"DefinitionUri: {tmp}/asl.json")
    text = text.replace("DefinitionUri: statemachine/", f"DefinitionUri: {REPO_ROOT}/statemachine/")  # the others
    (tmp / "template.yaml").write_text(text)
    return tmp / "template.yaml"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("stall")
    classes = ["bicycle", "motorcycle"]
    examples = transform.folder_examples(labelled_folder(root / "images", per_class=4, classes=classes), None, 0.5)
    transform.write_dataset(examples, classes, root / "dataset", source="t")
    key = next(f"test/{e.filename}" for e in examples if e.split == "test")
    return root / "dataset", key


# One runtime at a time (function-scoped fixtures, whatever the order tests run in): moto's interpreter caches its
# Lambda client, so a second runtime alive in this process would send its tasks to the first one's Lambda API.
@pytest.fixture
def stalled(tmp_path_factory):
    endpoint = StallingEndpoint()
    template = scaled_template(tmp_path_factory.mktemp("template"))
    try:
        with OfflineRuntime(endpoint.url, template_path=template, trigger=False) as runtime:
            yield runtime, endpoint
            endpoint.release()
    finally:
        endpoint.close()


def release_on_stop(runtime: OfflineRuntime, endpoint: StallingEndpoint) -> None:
    """The stuck Lambda is let go once StopExecution has been called (moto ends a stopped execution when the state
    in flight returns; AWS at once): nothing ends the execution before that, whatever the machine's load."""
    runtime.sfn.meta.events.register("after-call.sfn.StopExecution", lambda **_: endpoint.release())


@pytest.fixture
def held(tmp_path_factory):
    """An execution here runs until stopped: ClassifyImage waits on the stalling endpoint far past any test."""
    endpoint = StallingEndpoint()
    template = scaled_template(tmp_path_factory.mktemp("template"), classify_timeout_s=HELD_S)
    try:
        with OfflineRuntime(endpoint.url, template_path=template, trigger=False) as runtime:
            release_on_stop(runtime, endpoint)
            yield runtime, endpoint
    finally:
        endpoint.close()


def test_the_offline_summary_waits_for_the_executions_real_end(stalled, dataset):
    runtime, _ = stalled
    folder, key = dataset
    assert runtime.bounds.worst_case_s == 127 + (8 * CLASSIFY_TIMEOUT_S + 22) + 127 + 127 + 127  # + the review event

    summary = execute_test_images(runtime, folder, [key], concurrency=1)

    (outcome,) = summary.outcomes
    assert (outcome.status, outcome.error) == ("failed", "States.Timeout")  # what the execution really did
    assert outcome.latency_s >= CLASSIFY_TIMEOUT_S  # the summary waited for that end (no upper bound: load)
    assert runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn,
                                       statusFilter="RUNNING")["executions"] == []


def test_an_execution_past_its_deadline_is_stopped_and_reported_as_aborted(held, dataset):
    runtime, _ = held
    folder, key = dataset

    summary = execute_test_images(runtime, folder, [key], concurrency=1, deadline_s=0.5)

    (outcome,) = summary.outcomes
    assert (outcome.status, outcome.error) == ("aborted", "ExecutionStopped")
    assert summary.as_dict()["aborted"] == 1 and summary.as_dict()["failed_by_error"] == {}
    (execution,) = [e for e in runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn)["executions"]
                    if e["status"] == "ABORTED"]
    assert runtime.history(execution["executionArn"])[-1]["type"] == "ExecutionAborted"
    assert runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn,
                                       statusFilter="RUNNING")["executions"] == []


def test_leaving_the_runtime_stops_a_running_execution_before_the_services(tmp_path, dataset):
    endpoint = StallingEndpoint()
    folder, key = dataset
    try:
        with OfflineRuntime(endpoint.url, template_path=scaled_template(tmp_path, HELD_S), trigger=False) as runtime:
            release_on_stop(runtime, endpoint)
            runtime.put_image(staged_dataset_key(key), (folder / key).read_bytes())
            arn = runtime.start_execution(staged_dataset_key(key))
            wait_until(lambda: endpoint.connections, "ClassifyImage to call the endpoint")
            assert runtime.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        (stopped,) = runtime.stopped_at_exit
    finally:
        endpoint.close()
    assert (stopped.execution_arn, stopped.status) == (arn, "ABORTED")
