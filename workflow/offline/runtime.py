"""The offline runtime: the real ASL and the real handlers, with moto standing in for AWS.

moto's Step Functions interpreter executes the definition from template.yaml (substitutions
included); its `lambda:invoke` tasks reach our Lambda Invoke API server through
AWS_ENDPOINT_URL_LAMBDA; the handlers read S3 from moto and call the model endpoint (the local model
server, or a scripted stand-in) through AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME. Nothing here is a copy
of the workflow: change the ASL, a handler or the template and the offline run changes with it.

The runtime is a stack of small services, entered in order and stopped in reverse by one ExitStack:
fake credentials (and none of the user's AWS settings) -> moto (with the interpreter tuning and fidelity
patches) -> stdout routed to per-function logs -> the Lambda Invoke API -> the bucket and every state machine
of the template (the STANDARD and EXPRESS image-classification machines, the batch machine) -> the events
queue -> the S3 trigger -> (optionally) the classification API and a moto HTTP server for the AWS CLI.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from common.environ import isolated_aws_environ, patched_environ
from common.servers import BackgroundServer
from common.settings import OFFLINE_ACCOUNT, OFFLINE_BUCKET, OFFLINE_REGION, TEMPLATE_PATH
from common.template import SamTemplate
from workflow.offline.events import events_queue
from workflow.offline.lambda_api import LocalFunction, create_app
from workflow.offline.logs import function_log, routed_stdout
from workflow.offline.moto_fidelity import faithful_interpreter
from workflow.offline.moto_tuning import tuned_interpreter
from workflow.offline.trigger import DeadLetter, Trigger, eventbridge_trigger
from workflow.stepfunctions import (
    ExecutionBounds,
    ExecutionResult,
    execution_bounds,
    execution_history,
    start_execution,
    stop_execution,
    wait_for_execution,
)

AWS_CLI_INSTALL = "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"

logger = logging.getLogger(__name__)

STANDARD_MACHINE = "ImageClassificationStateMachine"
EXPRESS_MACHINE = "ImageClassificationExpressStateMachine"
BATCH_MACHINE = "BatchClassificationStateMachine"
CLASSIFICATION_API = "ClassificationApi"

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": OFFLINE_REGION,
    "AWS_REGION": OFFLINE_REGION,
}


@contextmanager
def moto_http_server() -> Iterator[str]:
    """A moto server on a free loopback port, serving the same in-process state; yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class OfflineRuntime:
    """Context manager that starts moto, the Lambda server, the bucket and the state machine.

    `endpoint_url` is where the classify-image Lambda finds the SageMaker runtime API: the local model
    server (`python -m data_prep serve`) or a ScriptedEndpoint. `parameter_overrides` work like
    `sam deploy --parameter-overrides`; `environment_overrides` like `sam local invoke --env-vars`
    (keyed by function logical ID). With `lambda_log_dir`, what each function prints (Powertools logs
    and metrics) goes to `<dir>/<LogicalId>.log` instead of this process's stdout. With `trigger`,
    uploads matching the state machine's EventBridgeRule events start executions (see trigger.py).
    With `expose_http`, a moto server on a free port serves the same S3 and Step Functions state to
    the AWS CLI (`--endpoint-url`). With `serve_api`, the template's classification API listens on a free
    port (`api_port` to choose one) and runs the EXPRESS machine as API Gateway would (api_gateway.py).
    Every event the workflow publishes reaches `events` (a queue behind a rule on the template's bus).
    `substitution_overrides` replace DefinitionSubstitutions values (a review bucket that refuses
    writes, say). With `mirror_dir`, the bucket is left on disk when the runtime stops (see mirror_bucket).

    Services are never torn down under a running execution: on exit, every execution still running
    is stopped (StopExecution) and its end awaited first; `stopped_at_exit` lists them.
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        template_path: Path = TEMPLATE_PATH,
        bucket: str = OFFLINE_BUCKET,
        parameter_overrides: Mapping[str, str] | None = None,
        environment_overrides: Mapping[str, Mapping[str, str]] | None = None,
        lambda_log_dir: Path | None = None,
        expose_http: bool = False,
        trigger: bool = True,
        substitution_overrides: Mapping[str, str] | None = None,
        serve_api: bool = False,
        api_port: int = 0,
        mirror_dir: Path | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.template = SamTemplate(template_path, {"DataBucketName": bucket, **(parameter_overrides or {})})
        self._environment_overrides = environment_overrides or {}
        self._lambda_log_dir = lambda_log_dir
        self._expose_http = expose_http
        self._with_trigger = trigger
        self._substitution_overrides = dict(substitution_overrides or {})
        self._serve_api = serve_api
        self._api_port = api_port
        self._mirror_dir = mirror_dir
        self.mirrored = 0
        self._stack = ExitStack()
        self._trigger: Trigger | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.lambda_url = ""
        self.moto_url: str | None = None
        self.api_url: str | None = None  # the stage's base URL: POST {api_url}/classifications
        self.state_machines: dict[str, str] = {}  # logical ID -> ARN
        self.state_machine_arn = ""  # the STANDARD image-classification machine (S3 trigger, console)
        self.express_state_machine_arn = ""
        self.batch_state_machine_arn = ""
        self.bounds = ExecutionBounds(None, None)
        self.stopped_at_exit: list[ExecutionResult] = []

    def __enter__(self) -> OfflineRuntime:
        with ExitStack() as stack:
            self._start(stack)
            self._stack = stack.pop_all()  # started: stopped by __exit__, in reverse order
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop_running_executions()
        except Exception:  # noqa: BLE001 - the services must stop whatever happens; say what was left running
            logger.exception("could not stop the running executions before stopping the offline runtime")
        try:
            if self._mirror_dir is not None:
                self.mirrored = self.mirror_bucket(self._mirror_dir)
        except Exception:  # noqa: BLE001 - as above: a full disk must not leave moto and the servers running
            logger.exception("could not leave the bucket on disk in %s", self._mirror_dir)
        finally:
            self._stack.close()

    def mirror_bucket(self, folder: Path) -> int:
        """Write every object of the bucket to `folder/<key>` (what `aws s3 sync` would leave), so the review
        page (`python -m review serve --source FOLDER`) and `data_prep train local --labels` can read it after the
        run. Runs when the runtime stops, Ctrl-C included, after the last execution has ended.

        What an earlier run left in `folder` is replaced, except `labels/`: those are people's work, and
        their review records are never reused (execution names are unique). Returns the objects written.
        """
        import shutil

        folder.mkdir(parents=True, exist_ok=True)
        root = folder.resolve()
        for child in folder.iterdir():
            if child.name == "labels":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        written = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                target = (folder / item["Key"]).resolve()
                if not target.is_relative_to(root) or item["Key"].endswith("/"):
                    logger.warning("not mirroring s3://%s/%s: not a file name under %s", self.bucket, item["Key"],
                                   folder)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.part")
                partial.write_bytes(self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read())
                partial.replace(target)
                written += 1
        return written

    def stop_running_executions(self) -> list[ExecutionResult]:
        """Stop every execution still running and wait for each to end (ABORTED), before anything stops."""
        paginator = self.sfn.get_paginator("list_executions")
        running = [item["executionArn"] for arn in self.state_machines.values()
                   for page in paginator.paginate(stateMachineArn=arn, statusFilter="RUNNING")
                   for item in page["executions"]]
        for arn in running:
            stop_execution(self.sfn, arn, cause="the offline runtime is stopping")
        grace = (self.bounds.longest_step_s or 60.0) + 5.0
        self.stopped_at_exit += [wait_for_execution(self.sfn, arn, timeout=grace, poll_interval=0.05,
                                                    max_poll_interval=0.5) for arn in running]
        return self.stopped_at_exit

    def _start(self, stack: ExitStack) -> None:
        stack.enter_context(isolated_aws_environ(FAKE_CREDENTIALS))  # none of the user's AWS settings apply
        stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        stack.enter_context(tuned_interpreter())
        stack.enter_context(faithful_interpreter())
        router = stack.enter_context(routed_stdout())
        self.functions = {
            logical_id: LocalFunction(
                spec,
                {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.endpoint_url,
                 **self._environment_overrides.get(logical_id, {})},
                log_router=router,
                log_sink=stack.enter_context(function_log(self._lambda_log_dir, logical_id)),
            )
            for logical_id, spec in self.template.functions().items()
        }
        lambda_server = stack.enter_context(BackgroundServer(create_app(self.functions), name="lambda-invoke-api"))
        self.lambda_url = lambda_server.url
        # moto's interpreter builds its own boto3 Lambda client, which reads this variable.
        stack.enter_context(patched_environ({"AWS_ENDPOINT_URL_LAMBDA": self.lambda_url}))
        self.s3 = boto3.client("s3", region_name=OFFLINE_REGION)
        self.sfn = boto3.client("stepfunctions", region_name=OFFLINE_REGION)
        self.s3.create_bucket(Bucket=self.bucket)
        machines = {logical_id: dataclasses.replace(spec, substitutions={**spec.substitutions,
                                                                         **self._substitution_overrides})
                    for logical_id, spec in self.template.state_machines().items()}
        for logical_id, spec in machines.items():
            self.state_machines[logical_id] = self.sfn.create_state_machine(
                name=spec.name, definition=spec.definition(), type=spec.type,
                roleArn=f"arn:aws:iam::{OFFLINE_ACCOUNT}:role/{logical_id}Role",
            )["stateMachineArn"]
        self.state_machine_arn = self.state_machines[STANDARD_MACHINE]
        self.express_state_machine_arn = self.state_machines[EXPRESS_MACHINE]
        self.batch_state_machine_arn = self.state_machines[BATCH_MACHINE]
        self.bounds = execution_bounds(machines[STANDARD_MACHINE].definition())
        self.events_client = boto3.client("events", region_name=OFFLINE_REGION)
        self.events = stack.enter_context(events_queue(self.events_client,
                                                       boto3.client("sqs", region_name=OFFLINE_REGION),
                                                       self.template.parameters["EventBusName"]))
        rules = machines[STANDARD_MACHINE].event_rules
        if self._with_trigger and rules:
            self._trigger = stack.enter_context(eventbridge_trigger(self.s3, self.state_machine_arn, self.bucket,
                                                                    rules))
        if self._serve_api:
            from workflow.offline.api_gateway import LocalRestApi

            api = LocalRestApi(self.template.api(CLASSIFICATION_API))
            server = stack.enter_context(BackgroundServer(api.app(), port=self._api_port, name="classification-api"))
            self.api_url = f"{server.url}/{api.spec.stage}"
        if self._expose_http:
            self.moto_url = stack.enter_context(moto_http_server())

    @property
    def triggered_executions(self) -> list[str]:
        """Executions the S3 trigger started, in order."""
        return self._trigger.executions if self._trigger else []

    def trigger_settled(self) -> bool:
        """The S3 trigger has ended every event it matched so far (Trigger.settled): nothing more will start."""
        return self._trigger.settled() if self._trigger else True

    def dead_letters(self) -> list[DeadLetter]:
        """What the S3 trigger could not deliver: its rules' dead-letter queues (DeadLetterConfig), read."""
        return self._trigger.dead_letters() if self._trigger else []

    @property
    def dead_letter_queues(self) -> dict[str, str]:
        """Each trigger rule's dead-letter queue URL, by rule name."""
        return dict(self._trigger.dead_letter_urls) if self._trigger else {}

    def connection_help(self) -> list[str]:
        """How to reach the running services with the AWS CLI, one command per line."""
        url = self.moto_url or "(start with expose_http)"
        lines = [
            f"S3 and Step Functions: {url}   Lambda: {self.lambda_url}   SageMaker runtime: {self.endpoint_url}",
            f"export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={OFFLINE_REGION}",
            f"# the aws lines need the AWS CLI, which make install does not install: {AWS_CLI_INSTALL}",
            f"aws --endpoint-url {url} s3 cp photo.jpg s3://{self.bucket}/incoming/photo.jpg   # starts an execution",
            f"aws --endpoint-url {url} stepfunctions list-executions --state-machine-arn {self.state_machine_arn}",
        ]
        if self.api_url:
            lines += self.api_help(stored_key="incoming/photo.jpg")
        return lines

    def api_help(self, stored_key: str | None = None) -> list[str]:
        """How to call the classification API (IAM auth offline: any SigV4-signed request is let in) with curl,
        which signs SigV4 itself (nothing the project does not install). `stored_key`: an image the lines printed
        before put in the bucket, for the JSON form (which names an object, so it needs one there)."""
        endpoint = f"{self.api_url}/classifications"
        sign = f"curl --aws-sigv4 aws:amz:{OFFLINE_REGION}:execute-api --user testing:testing"
        lines = [f"classification API: POST {endpoint}",
                 f"{sign} -H 'Content-Type: image/png' --data-binary @photo.png {endpoint}"]
        if stored_key:
            lines.append(f"{sign} -H 'Content-Type: application/json' -d '{{\"s3_bucket\": \"{self.bucket}\", "
                         f"\"s3_key\": \"{stored_key}\"}}' {endpoint}   # the image the s3 cp line put there")
        return lines

    def invoke(self, logical_id: str, event: Any = None) -> tuple[Any, bool]:
        """Invoke a function through the local Lambda Invoke API, as EventBridge Scheduler invokes a scheduled one:
        (its result, or its error payload; whether it is a function error)."""
        from botocore.config import Config

        client = boto3.client("lambda", endpoint_url=self.lambda_url, region_name=OFFLINE_REGION,
                              config=Config(read_timeout=self.functions[logical_id].spec.timeout + 10,
                                            retries={"total_max_attempts": 1}))
        response = client.invoke(FunctionName=logical_id, Payload=json.dumps(event or {}).encode())
        return json.loads(response["Payload"].read()), bool(response.get("FunctionError"))

    def put_image(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def start_execution(self, key: str, *, name: str | None = None, bucket: str | None = None) -> str:
        return start_execution(self.sfn, self.state_machine_arn, bucket or self.bucket, key, name=name)

    def wait(self, execution_arn: str, timeout: float = 60.0, poll_interval: float = 0.02) -> ExecutionResult:
        return wait_for_execution(self.sfn, execution_arn, timeout=timeout, poll_interval=poll_interval)

    def run(self, key: str, *, timeout: float = 60.0) -> ExecutionResult:
        return self.wait(self.start_execution(key), timeout=timeout)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return execution_history(self.sfn, execution_arn)

    def review_records(self) -> dict[str, dict[str, Any]]:
        """The review/ records written by the state machine, keyed by S3 key."""
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="review/")
        return {
            item["Key"]: json.loads(self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read())
            for item in listing.get("Contents", [])
        }
