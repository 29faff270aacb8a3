"""Make moto's Step Functions interpreter cheap enough to run hundreds of executions on 2 cores.

Measured with `py-spy --gil` on bench/workflow_throughput.py, two costs dominated, neither of which is
Step Functions behaviour:
- moto builds a new boto3 client for every task it runs (four per execution here), about 20% of all
  CPU. boto3 clients are thread-safe, so the interpreter gets one cached client per (region, service,
  execution role): offline IAM (workflow.offline.iam.task_client) signs a machine's task clients with its role.
- moto parses the ASL definition with its ANTLR grammar at the start of every execution, about 17%.
  The parsed program keeps no per-execution state (retry counters and variables live in the
  execution's Environment), so one parse per definition is reused.
- then, at about 10%: every JSONPath evaluation builds a new jsonpath-ng parser (its yacc tables
  included). Compiled paths are immutable, so each path string is compiled once.
- once the workflow published events (PutEvents on each outcome), moto's EventBridge did the same for
  every rule target (its EventTemplateParser compiles eight default paths per event: 8% of all CPU):
  the same cache for jsonpath_ng.ext.parse took 1,000 executions from 16.2 to 18.7 per second.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import jsonpath_ng.ext
import moto.stepfunctions.parser.asl as asl_package
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from workflow.offline.iam import task_client

_ORIGINAL: Callable[..., Any] = boto_client.boto_client_for


def _modules_using_boto_client_for() -> list[Any]:
    modules = [boto_client]
    for info in pkgutil.walk_packages(asl_package.__path__, asl_package.__name__ + "."):
        if "state_task" in info.name or "resource_eval" in info.name:
            module = importlib.import_module(info.name)
            if getattr(module, "boto_client_for", None) is _ORIGINAL:
                modules.append(module)
    return modules


@contextmanager
def tuned_interpreter() -> Iterator[None]:
    cache: dict[tuple[str, str, str | None], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, getattr(state_credentials, "role_arn", None))
        with lock:
            client = cache.get(key)
            if client is None:  # signed with the machine's role when offline IAM knows it (workflow.offline.iam)
                client = cache[key] = task_client(region, service, state_credentials)
        return client

    programs: dict[str, Any] = {}

    def evaluation_entrypoint(worker: ExecutionWorker) -> Any:
        definition = worker._evaluation_details.state_machine_details.definition
        with lock:
            program = programs.get(definition)
            if program is None:
                program = programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
        return program

    patches: list[Any] = [mock.patch.object(module, "boto_client_for", boto_client_for)
                          for module in _modules_using_boto_client_for()]
    patches.append(mock.patch.object(ExecutionWorker, "_get_evaluation_entrypoint", evaluation_entrypoint))
    patches.append(mock.patch.object(json_path, "parse", functools.lru_cache(maxsize=4096)(json_path.parse)))
    # moto's EventTemplateParser imports jsonpath_ng.ext.parse inside the call: the module attribute is read each time
    patches.append(mock.patch.object(jsonpath_ng.ext, "parse",
                                     functools.lru_cache(maxsize=4096)(jsonpath_ng.ext.parse)))
    for patch in patches:
        patch.start()
    try:
        yield
    finally:
        for patch in reversed(patches):
            patch.stop()
