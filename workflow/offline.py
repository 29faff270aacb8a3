"""The offline runtime: the real ASL and the real handlers, with moto standing in for AWS.

moto's Step Functions interpreter executes the definition from template.yaml (substitutions
included); its `lambda:invoke` tasks reach our Lambda Invoke API server through
AWS_ENDPOINT_URL_LAMBDA; the handlers read S3 from moto and call the model endpoint (the local model
server, or a scripted stand-in) through AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME. Nothing here is a copy
of the workflow: change the ASL, a handler or the template and the offline run changes with it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
from moto import mock_aws

from workflow.lambda_server import LocalFunction, LogRouter, create_app
from workflow.moto_tuning import tuned_interpreter
from workflow.servers import BackgroundServer
from workflow.template import OFFLINE_REGION, SamTemplate

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_BUCKET = "scones-offline"
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": OFFLINE_REGION,
    "AWS_REGION": OFFLINE_REGION,
}


class ExecutionTimeoutError(Exception):
    """An execution did not reach a terminal status in time."""


@dataclass(frozen=True)
class ExecutionResult:
    execution_arn: str
    name: str
    status: str
    input: dict[str, Any]
    output: Any
    error: str | None
    cause: str | None
    duration_s: float

    @property
    def cause_message(self) -> str | None:
        """The errorMessage inside a Lambda error's cause, or the cause itself."""
        if self.cause is None:
            return None
        try:
            return str(json.loads(self.cause).get("errorMessage", self.cause))
        except (json.JSONDecodeError, AttributeError):
            return self.cause


def start_execution(sfn: Any, state_machine_arn: str, bucket: str, key: str, *, name: str | None = None) -> str:
    """Start one execution with the starter's input shape; returns its ARN."""
    payload = {"image_data": "", "s3_bucket": bucket, "s3_key": key}
    response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name or str(uuid.uuid4()),
                                   input=json.dumps(payload))
    return str(response["executionArn"])


def read_review_record(s3: Any, bucket: str, execution_name: str) -> dict[str, Any] | None:
    """The review/ record the state machine wrote for a low-confidence execution, if any."""
    try:
        body = s3.get_object(Bucket=bucket, Key=f"review/{execution_name}.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    record: dict[str, Any] = json.loads(body)
    return record


def wait_for_execution(sfn: Any, execution_arn: str, *, timeout: float, poll_interval: float,
                       max_poll_interval: float | None = None) -> ExecutionResult:
    """Poll DescribeExecution until the execution ends (moto has no StartSyncExecution).

    The interval grows by half each poll up to `max_poll_interval` (10x the first by default): quick
    executions are seen quickly, slow ones (retries that back off for seconds) are not polled hard.
    """
    deadline = time.monotonic() + timeout
    interval, ceiling = poll_interval, max_poll_interval or poll_interval * 10
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] in TERMINAL_STATUSES:
            break
        if time.monotonic() > deadline:
            raise ExecutionTimeoutError(f"{execution_arn} still {description['status']} after {timeout} s")
        time.sleep(interval)
        interval = min(ceiling, interval * 1.5)
    stop = description.get("stopDate", description["startDate"])
    return ExecutionResult(
        execution_arn=execution_arn,
        name=execution_arn.rsplit(":", 1)[1],
        status=description["status"],
        input=json.loads(description["input"]),
        output=json.loads(description["output"]) if description.get("output") else None,
        error=description.get("error"),
        cause=description.get("cause"),
        duration_s=(stop - description["startDate"]).total_seconds(),
    )


class OfflineRuntime:
    """Context manager that starts moto, the Lambda server, the bucket and the state machine.

    `endpoint_url` is where the classify-image Lambda finds the SageMaker runtime API: the local model
    server (`python -m data_prep serve`) or a ScriptedEndpoint. `parameter_overrides` work like
    `sam deploy --parameter-overrides`; `environment_overrides` like `sam local invoke --env-vars`
    (keyed by function logical ID). With `lambda_log_dir`, what each function prints (Powertools logs
    and metrics) goes to `<dir>/<LogicalId>.log` instead of this process's stdout.

    With `trigger`, the state machine's EventBridgeRule events from the template are wired up: S3
    sends its EventBridge events to the rule (moto matches the template's pattern), and since moto's
    EventBridge cannot target Step Functions, the rule targets a queue whose messages are turned into
    executions with the template's InputTransformer. With `expose_http`, a moto server on a free port
    serves the same S3 and Step Functions state to the AWS CLI (`--endpoint-url`).
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        template_path: Path = DEFAULT_TEMPLATE,
        bucket: str = DEFAULT_BUCKET,
        parameter_overrides: Mapping[str, str] | None = None,
        environment_overrides: Mapping[str, Mapping[str, str]] | None = None,
        lambda_log_dir: Path | None = None,
        expose_http: bool = False,
        trigger: bool = True,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.template = SamTemplate(template_path, {"DataBucketName": bucket, **(parameter_overrides or {})})
        self._environment_overrides = environment_overrides or {}
        self._lambda_log_dir = lambda_log_dir
        self._expose_http = expose_http
        self._trigger = trigger
        self._moto_server: Any = None
        self._trigger_threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.triggered_executions: list[str] = []
        self._log_files: list[TextIO] = []
        self._log_router: LogRouter | None = None
        self._saved_environ: dict[str, str | None] = {}
        self._mock: Any = None
        self._interpreter_tuning: Any = None
        self._lambda_server: BackgroundServer | None = None
        self.state_machine_arn = ""

    def _set_process_environ(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self._saved_environ.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def __enter__(self) -> OfflineRuntime:
        self._set_process_environ(_FAKE_CREDENTIALS)
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        self._interpreter_tuning = tuned_interpreter()
        self._interpreter_tuning.__enter__()
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _log_sink(self, logical_id: str) -> TextIO | None:
        if self._lambda_log_dir is None:
            return None
        self._lambda_log_dir.mkdir(parents=True, exist_ok=True)
        sink = (self._lambda_log_dir / f"{logical_id}.log").open("a", buffering=1)
        self._log_files.append(sink)
        return sink

    def _start(self) -> None:
        self._log_router = LogRouter(sys.stdout)
        sys.stdout = self._log_router
        functions = {
            logical_id: LocalFunction(
                spec,
                {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.endpoint_url,
                 **self._environment_overrides.get(logical_id, {})},
                log_router=self._log_router,
                log_sink=self._log_sink(logical_id),
            )
            for logical_id, spec in self.template.functions().items()
        }
        self.functions = functions
        self._lambda_server = BackgroundServer(create_app(functions), name="lambda-invoke-api").start()
        # moto's interpreter builds its own boto3 Lambda client, which reads this variable.
        self._set_process_environ({"AWS_ENDPOINT_URL_LAMBDA": self._lambda_server.url})
        self.s3 = boto3.client("s3", region_name=OFFLINE_REGION)
        self.sfn = boto3.client("stepfunctions", region_name=OFFLINE_REGION)
        self.s3.create_bucket(Bucket=self.bucket)
        machine = self.template.state_machine()
        self.state_machine_arn = self.sfn.create_state_machine(
            name=machine.logical_id,
            definition=machine.definition(),
            roleArn=f"arn:aws:iam::123456789012:role/{machine.logical_id}Role",
        )["stateMachineArn"]
        if self._trigger and machine.event_rules:
            self._start_trigger(machine.event_rules)
        if self._expose_http:
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            self._moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._moto_server.start()

    def _start_trigger(self, rules: dict[str, dict[str, Any]]) -> None:
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
        events = boto3.client("events", region_name=OFFLINE_REGION)
        sqs = boto3.client("sqs", region_name=OFFLINE_REGION)
        for name, rule in rules.items():  # a queue per rule, so each event gets its own rule's transformer
            queue_url = sqs.create_queue(QueueName=f"{name}-offline-target")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url,
                                                 AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events.put_rule(Name=name, EventPattern=json.dumps(rule["Pattern"]), State="ENABLED")
            events.put_targets(Rule=name, Targets=[{"Id": "StateMachineQueue", "Arn": queue_arn}])
            thread = threading.Thread(target=self._forward_events, args=(sqs, queue_url, rule.get("InputTransformer")),
                                      name=f"{name}-to-stepfunctions", daemon=True)
            thread.start()
            self._trigger_threads.append(thread)

    def _forward_events(self, sqs: Any, queue_url: str, transformer: dict[str, Any] | None) -> None:
        """What EventBridge's Step Functions target does: transform the event, start an execution."""
        from moto.events.models import EventTemplateParser

        while not self._stopping.is_set():
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in messages.get("Messages", []):
                event = json.loads(message["Body"])
                event.setdefault("ingestion-time", event.get("time"))  # moto's template parser reads it
                try:
                    payload = (EventTemplateParser.parse(input_template=transformer["InputTemplate"],
                                                         input_paths_map=transformer.get("InputPathsMap", {}),
                                                         event=event) if transformer else event)
                    text = payload if isinstance(payload, str) else json.dumps(payload)
                    arn = self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=str(uuid.uuid4()),
                                                   input=text)["executionArn"]
                except Exception:  # noqa: BLE001 - left on the queue, retried after its visibility timeout
                    logging.getLogger(__name__).exception("could not start an execution for %s", message["Body"])
                    continue
                self.triggered_executions.append(arn)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    @property
    def moto_url(self) -> str | None:
        if self._moto_server is None:
            return None
        host, port = self._moto_server.get_host_and_port()
        return f"http://{host}:{port}"

    def connection_help(self) -> str:
        """How to reach the running services with the AWS CLI."""
        url = self.moto_url or "(start with expose_http)"
        return "\n".join([
            f"S3 and Step Functions: {url}   Lambda: {self.lambda_url}   SageMaker runtime: {self.endpoint_url}",
            "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1",
            f"aws --endpoint-url {url} s3 cp photo.jpg s3://{self.bucket}/incoming/photo.jpg   # starts an execution",
            f"aws --endpoint-url {url} stepfunctions list-executions --state-machine-arn {self.state_machine_arn}",
        ])

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        for thread in self._trigger_threads:
            thread.join(timeout=5)
        self._trigger_threads.clear()
        if self._moto_server is not None:
            self._moto_server.stop()
            self._moto_server = None
        if self._lambda_server is not None:
            self._lambda_server.stop()
            self._lambda_server = None
        if self._interpreter_tuning is not None:
            self._interpreter_tuning.__exit__(None, None, None)
            self._interpreter_tuning = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._log_router is not None:
            sys.stdout = self._log_router.default
            self._log_router = None
        for sink in self._log_files:
            sink.close()
        self._log_files.clear()
        for key, old in self._saved_environ.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        self._saved_environ.clear()

    @property
    def lambda_url(self) -> str:
        assert self._lambda_server is not None
        return self._lambda_server.url

    def put_image(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def start_execution(self, key: str, *, name: str | None = None, bucket: str | None = None) -> str:
        return start_execution(self.sfn, self.state_machine_arn, bucket or self.bucket, key, name=name)

    def wait(self, execution_arn: str, timeout: float = 60.0, poll_interval: float = 0.02) -> ExecutionResult:
        return wait_for_execution(self.sfn, execution_arn, timeout=timeout, poll_interval=poll_interval)

    def run(self, key: str, *, timeout: float = 60.0) -> ExecutionResult:
        return self.wait(self.start_execution(key), timeout=timeout)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        paginator_args: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**paginator_args)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            paginator_args["nextToken"] = page["nextToken"]

    def review_records(self) -> dict[str, dict[str, Any]]:
        """The review/ records written by the state machine, keyed by S3 key."""
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="review/")
        return {
            item["Key"]: json.loads(self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read())
            for item in listing.get("Contents", [])
        }
