"""The template's S3 trigger offline: S3 -> EventBridge rule (moto) -> queue -> forwarder -> StartExecution.

moto's EventBridge cannot target Step Functions, so each EventBridgeRule event of the state machine
targets a queue of its own here, and a forwarder thread does what EventBridge's Step Functions
target does: apply the rule's InputTransformer to the event and start an execution.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from common.settings import OFFLINE_REGION

logger = logging.getLogger(__name__)


class Trigger:
    """The forwarders of one state machine's rules; `executions` lists what they started, in order."""

    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self.sfn, self.state_machine_arn = sfn, state_machine_arn
        self.executions: list[str] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def add_rule(self, sqs: Any, events: Any, name: str, rule: dict[str, Any]) -> None:
        queue_url = sqs.create_queue(QueueName=f"{name}-offline-target")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventPattern=json.dumps(rule["Pattern"]), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "StateMachineQueue", "Arn": queue_arn}])
        thread = threading.Thread(target=self._forward, args=(sqs, queue_url, rule.get("InputTransformer")),
                                  name=f"{name}-to-stepfunctions", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _forward(self, sqs: Any, queue_url: str, transformer: dict[str, Any] | None) -> None:
        from moto.events.models import EventTemplateParser

        while not self.stopping.is_set():
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
                    logger.exception("could not start an execution for %s", message["Body"])
                    continue
                self.executions.append(arn)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)


@contextmanager
def eventbridge_trigger(s3: Any, sfn: Any, bucket: str, state_machine_arn: str,
                        rules: dict[str, dict[str, Any]]) -> Iterator[Trigger]:
    """Send the bucket's events to EventBridge and forward each rule's matches, until the block ends."""
    s3.put_bucket_notification_configuration(Bucket=bucket,
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    events = boto3.client("events", region_name=OFFLINE_REGION)
    sqs = boto3.client("sqs", region_name=OFFLINE_REGION)
    trigger = Trigger(sfn, state_machine_arn)
    try:
        for name, rule in rules.items():  # a queue per rule, so each event gets its own rule's transformer
            trigger.add_rule(sqs, events, name, rule)
        yield trigger
    finally:
        trigger.stop()
