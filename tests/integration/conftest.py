from __future__ import annotations

import pytest

from common.servers import BackgroundServer
from tests.support import SCRIPTED_STACK
from workflow.offline.runtime import OfflineRuntime
from workflow.offline.stub_endpoint import Answer, ScriptedEndpoint


@pytest.fixture(scope="module")
def endpoint():
    scripted = ScriptedEndpoint(default=Answer.probabilities(0.97, 0.03))  # two-class, as the runtime below deploys
    with BackgroundServer(scripted.app(), name="scripted-endpoint") as server:
        scripted.url = server.url
        yield scripted


@pytest.fixture(scope="module")
def lambda_logs(tmp_path_factory):
    return tmp_path_factory.mktemp("lambda-logs")


@pytest.fixture(scope="module")
def runtime(endpoint, lambda_logs):
    with OfflineRuntime(endpoint.url, lambda_log_dir=lambda_logs, parameter_overrides=SCRIPTED_STACK) as offline:
        yield offline


@pytest.fixture(autouse=True)
def fresh_script(request):
    """Each test scripts its own answers; leftovers from a failed test must not leak into the next."""
    if "endpoint" in request.fixturenames:
        endpoint = request.getfixturevalue("endpoint")
        endpoint.script.clear()
        endpoint.invocations.clear()
    yield
