"""The template's S3 trigger offline: S3 -> EventBridge rule (moto) -> queue -> forwarder -> StartExecution.

moto's EventBridge cannot target Step Functions, so each EventBridgeRule event of the state machine
targets a queue of its own here, and a forwarder thread does what EventBridge's Step Functions
target does, no more forgiving than AWS:

- the rule's InputTransformer is applied as EventBridge documents it: a placeholder in a JSON value
  position gets the value as JSON (a string quoted and escaped), a placeholder inside a JSON string
  gets the value's text unescaped ("EventBridge doesn't escape values extracted by Input Path"), so
  a template that quotes its placeholders breaks on a key holding `"` offline exactly as on AWS;
- the text is passed to StartExecution as it is (Step Functions refuses invalid JSON with
  InvalidExecutionInput); it is never parsed and re-encoded here;
- failed deliveries follow the target's RetryPolicy: throttling, 5xx and network faults are retried
  with exponential back-off until MaximumRetryAttempts or MaximumEventAgeInSeconds runs out; other
  errors (invalid input, missing state machine, access denied) are not retried. An event that is not
  delivered goes to the DeadLetterConfig queue with EventBridge's message attributes (RULE_ARN,
  TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, RETRY_ATTEMPTS, EXHAUSTED_RETRY_CONDITION), or is dropped
  and counted when the rule has none. Nothing loops.

Back-off delays are shortened offline (see `RetryPolicy.delay`); attempts and event age are counted
as EventBridge counts them.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from common.aws_errors import THROTTLING_CODES
from common.cfn_yaml import TemplateError
from common.settings import OFFLINE_REGION
from workflow.offline.events import rule_to_queue

logger = logging.getLogger(__name__)

# EventBridge's defaults when a target has no RetryPolicy (eb-rule-dlq.md: 24 hours, 185 attempts).
DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 185
DEFAULT_MAXIMUM_EVENT_AGE_S = 86400
# Held by the forwarder while it retries, so the queue never hands the same event out twice.
IN_FLIGHT_VISIBILITY_S = 12 * 3600
LONG_POLL_S = 1
RETRY_POLL_S = 0.05
STOP_SENTINEL = "offline-trigger-stop"
PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
WILDCARD = "*"
PATH_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+|\*)|\[(\d+|\*)\]")


class InputTransformerError(TemplateError):
    """An InputTransformer that EventBridge's PutTargets would refuse (unknown placeholder, unsupported path)."""


# --- the input transformer ------------------------------------------------------------------------------

def _path_tokens(path: str) -> list[str | int]:
    """`$.detail.object.key` / `$.resources[0]` as tokens; the JSONPath subset EventBridge supports."""
    if not path.startswith("$"):
        raise InputTransformerError(f"InputPathsMap value {path!r} must start with $")
    tokens: list[str | int] = []
    position = 1
    while position < len(path):
        match = PATH_TOKEN.match(path, position)
        if match is None:
            raise InputTransformerError(f"InputPathsMap value {path!r}: unsupported JSONPath at {path[position:]!r}")
        name, index = match.groups()
        tokens.append(name if name is not None else (WILDCARD if index == WILDCARD else int(index)))
        position = match.end()
    return tokens


def _extract(value: Any, tokens: list[str | int]) -> tuple[bool, Any]:
    """(found, value) at the path; a wildcard collects every match into a list."""
    for position, token in enumerate(tokens):
        if token == WILDCARD:
            children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
            found = [v for ok, v in (_extract(child, tokens[position + 1:]) for child in children) if ok]
            return True, found
        if isinstance(token, int):
            if not isinstance(value, list) or token >= len(value):
                return False, None
            value = value[token]
        elif isinstance(value, dict) and token in value:
            value = value[token]
        else:
            return False, None
    return True, value


def _predefined(event: dict[str, Any], rule_arn: str, rule_name: str) -> dict[str, Any]:
    """EventBridge's reserved variables (eb-transform-target-input.md, Predefined variables)."""
    return {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_name,
        "aws.events.event.ingestion-time": event.get("time"),
        "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
        "aws.events.event.json": event,
    }


def check_input_transformer(transformer: dict[str, Any]) -> None:
    """Refuse what PutTargets refuses: a placeholder with no InputPathsMap entry, a path EventBridge cannot read."""
    paths = transformer.get("InputPathsMap", {})
    for path in paths.values():
        _path_tokens(path)
    known = set(paths) | set(_predefined({}, "", ""))
    for name in PLACEHOLDER.findall(transformer["InputTemplate"]):
        if name not in known:
            raise InputTransformerError(f"InputTemplate contains invalid placeholder {name}")


def apply_input_transformer(transformer: dict[str, Any], event: dict[str, Any], *, rule_arn: str = "",
                            rule_name: str = "") -> str:
    """The text EventBridge sends to the target: the InputTemplate with each `<name>` filled from the event.

    In a JSON template (one that starts with `{` or `[`), a placeholder in a value position is
    replaced by the value as JSON (the docs' "Simple JSON" example: `"instance": <instance>` gives
    `"instance": "i-0123456789"`); one inside a JSON string by the value's text, unescaped (the docs:
    "EventBridge doesn't escape values extracted by Input Path"). In a plain-text template every
    placeholder gets the value's text. A path missing from the event gives no value: null in a value
    position, nothing inside a string.
    """
    check_input_transformer(transformer)
    values: dict[str, Any] = _predefined(event, rule_arn, rule_name)
    missing = object()
    for name, path in transformer.get("InputPathsMap", {}).items():
        found, value = _extract(event, _path_tokens(path))
        values[name] = value if found else missing
    template: str = transformer["InputTemplate"]
    is_json = template.lstrip().startswith(("{", "["))

    def text_of(value: Any) -> str:
        if value is missing or value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    out: list[str] = []
    in_string = escaped = False
    position = 0
    while position < len(template):
        match = PLACEHOLDER.match(template, position)
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if is_json and not in_string:
                out.append("null" if value is missing else json.dumps(value, ensure_ascii=False))
            else:
                out.append(text_of(value))
            position = match.end()
            continue
        char = template[position]
        if is_json:
            if escaped:
                escaped = False
            elif char == "\\" and in_string:
                escaped = True
            elif char == '"':
                in_string = not in_string
        out.append(char)
        position += 1
    return "".join(out)


# --- retries and the dead-letter queue -----------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    """The target's RetryPolicy. Offline, the back-off starts at `base_delay_s` and doubles up to
    `max_delay_s` (EventBridge's own delays are exponential with jitter and much longer)."""

    maximum_retry_attempts: int = DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age_s: float = DEFAULT_MAXIMUM_EVENT_AGE_S
    base_delay_s: float = 0.05
    max_delay_s: float = 1.0

    @classmethod
    def of_rule(cls, rule: dict[str, Any], **delays: float) -> RetryPolicy:
        policy = rule.get("RetryPolicy", {})
        return cls(int(policy.get("MaximumRetryAttempts", DEFAULT_MAXIMUM_RETRY_ATTEMPTS)),
                   float(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE_S)), **delays)

    def delay(self, retry: int) -> float:
        """Seconds before retry number `retry` (1-based)."""
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1)))


@dataclass(frozen=True)
class DeliveryError:
    code: str
    message: str
    retryable: bool

    @classmethod
    def of(cls, error: Exception) -> DeliveryError:
        """Throttling, 5xx and network faults are retried, as EventBridge retries them; the rest are final."""
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", "")) or "ClientError"
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            message = str(error.response.get("Error", {}).get("Message", error))
            return cls(code, message, code in THROTTLING_CODES or status >= 500 or status == 429)
        if isinstance(error, BotoCoreError):
            return cls(type(error).__name__, str(error), True)
        return cls(type(error).__name__, str(error), False)


def _event_time(event: dict[str, Any], received: float) -> float:
    """The event's `time` as epoch seconds (AWS sends ISO 8601, moto an epoch number)."""
    stamp = event.get("time")
    if isinstance(stamp, int | float):
        return float(stamp)
    if isinstance(stamp, str):
        try:
            return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return received


@dataclass(order=True)
class Delivery:
    due: float
    sequence: int
    body: str = field(compare=False)
    receipt: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    event_time: float = field(compare=False)
    failures: int = field(default=0, compare=False)


@dataclass(frozen=True)
class DeadLetter:
    """One message of a rule's dead-letter queue: the event and EventBridge's attributes."""

    event: dict[str, Any]
    attributes: dict[str, str]


class RuleForwarder:
    """One rule's target: reads its queue, delivers each event to StartExecution, retries, dead-letters."""

    def __init__(self, trigger: Trigger, name: str, rule_arn: str, queue_url: str, rule: dict[str, Any],
                 dead_letter_url: str | None, policy: RetryPolicy) -> None:
        self.trigger, self.name, self.rule_arn, self.queue_url = trigger, name, rule_arn, queue_url
        self.transformer: dict[str, Any] | None = rule.get("InputTransformer")
        if self.transformer:
            check_input_transformer(self.transformer)
        self.dead_letter_url, self.policy = dead_letter_url, policy
        self.retries: list[Delivery] = []
        self.sequence = itertools.count()

    def run(self) -> None:
        while not self.trigger.stopping.is_set():
            # Long polls while nothing waits for a retry (no CPU spent idle); stop() wakes them with a sentinel.
            wait = 0 if self.retries else LONG_POLL_S
            messages = self.trigger.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                VisibilityTimeout=IN_FLIGHT_VISIBILITY_S, MessageAttributeNames=[STOP_SENTINEL]).get("Messages", [])
            for message in messages:
                if STOP_SENTINEL in message.get("MessageAttributes", {}):
                    self.trigger.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                    continue
                try:
                    event = json.loads(message["Body"])
                except json.JSONDecodeError:  # EventBridge writes JSON; anything else is not an event
                    logger.error("not an event, discarded: %r", message["Body"][:200])
                    self.trigger.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                    continue
                self.attempt(Delivery(0.0, next(self.sequence), message["Body"], message["ReceiptHandle"], event,
                                      _event_time(event, time.time())))
            while self.retries and self.retries[0].due <= time.time() and not self.trigger.stopping.is_set():
                self.attempt(heapq.heappop(self.retries))
            if self.retries and not messages:
                self.trigger.stopping.wait(max(0.0, min(RETRY_POLL_S, self.retries[0].due - time.time())))

    def wake(self) -> None:
        """End a long poll at once (stop() is never kept waiting by it)."""
        self.trigger.sqs.send_message(QueueUrl=self.queue_url, MessageBody="{}", MessageAttributes={
            STOP_SENTINEL: {"DataType": "String", "StringValue": "stop"}})

    def attempt(self, delivery: Delivery) -> None:
        try:
            text = (apply_input_transformer(self.transformer, delivery.event, rule_arn=self.rule_arn,
                                            rule_name=self.name)
                    if self.transformer else json.dumps(delivery.event))
            arn = self.trigger.sfn.start_execution(stateMachineArn=self.trigger.state_machine_arn,
                                                   name=str(uuid.uuid4()), input=text)["executionArn"]
        except Exception as error:  # noqa: BLE001 - every failure is retried or dead-lettered, by its kind
            self.failed(delivery, DeliveryError.of(error))
            return
        self.trigger.executions.append(str(arn))
        self.done(delivery)

    def failed(self, delivery: Delivery, error: DeliveryError) -> None:
        delivery.failures += 1
        retries_done = delivery.failures - 1
        if not error.retryable:
            self.dead_letter(delivery, error, retries_done, exhausted=None)
            return
        if retries_done >= self.policy.maximum_retry_attempts:
            self.dead_letter(delivery, error, retries_done, exhausted="MaximumRetryAttempts")
            return
        due = time.time() + self.policy.delay(delivery.failures)
        if due - delivery.event_time > self.policy.maximum_event_age_s:
            self.dead_letter(delivery, error, retries_done, exhausted="MaximumEventAgeInSeconds")
            return
        delivery.due = due
        heapq.heappush(self.retries, delivery)

    def dead_letter(self, delivery: Delivery, error: DeliveryError, retries: int, exhausted: str | None) -> None:
        attributes = {"RULE_ARN": self.rule_arn, "TARGET_ARN": self.trigger.state_machine_arn,
                      "ERROR_CODE": error.code, "ERROR_MESSAGE": error.message[:1000], "RETRY_ATTEMPTS": str(retries)}
        if exhausted:
            attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
        if self.dead_letter_url is None:
            logger.warning("event dropped (rule %s has no dead-letter queue): %s %s", self.name, attributes,
                           delivery.body)
            self.trigger.dropped.append(DeadLetter(delivery.event, attributes))
        else:
            self.trigger.sqs.send_message(
                QueueUrl=self.dead_letter_url, MessageBody=delivery.body,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()})
        self.done(delivery)

    def done(self, delivery: Delivery) -> None:
        self.trigger.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt)


class Trigger:
    """The forwarders of one state machine's rules; `executions` lists what they started, in order."""

    def __init__(self, sfn: Any, sqs: Any, state_machine_arn: str, *, base_delay_s: float = 0.05,
                 max_delay_s: float = 1.0) -> None:
        self.sfn, self.sqs, self.state_machine_arn = sfn, sqs, state_machine_arn
        self.delays = {"base_delay_s": base_delay_s, "max_delay_s": max_delay_s}
        self.executions: list[str] = []
        self.dropped: list[DeadLetter] = []
        self.dead_letter_urls: dict[str, str] = {}
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.forwarders: list[RuleForwarder] = []

    def add_rule(self, events: Any, name: str, rule: dict[str, Any]) -> RuleForwarder:
        queue_url, rule_arn = rule_to_queue(events, self.sqs, name, f"{name}-offline-target", rule["Pattern"],
                                            "StateMachineQueue")
        dead_letter_url = self._dead_letter_queue(name, rule.get("DeadLetterConfig"))
        forwarder = RuleForwarder(self, name, rule_arn, queue_url, rule, dead_letter_url,
                                  RetryPolicy.of_rule(rule, **self.delays))
        thread = threading.Thread(target=forwarder.run, name=f"{name}-to-stepfunctions", daemon=True)
        thread.start()
        self.threads.append(thread)
        self.forwarders.append(forwarder)
        return forwarder

    def _dead_letter_queue(self, rule_name: str, config: dict[str, Any] | None) -> str | None:
        """The queue SAM's DeadLetterConfig names (its Arn's queue name; `Type: SQS` creates `<rule logical ID>Queue`),
        created here."""
        if not config:
            return None
        name = config.get("QueueLogicalId") or (str(config["Arn"]).rsplit(":", 1)[1] if config.get("Arn")
                                                else f"{rule_name}Queue")
        url = str(self.sqs.create_queue(QueueName=name)["QueueUrl"])
        self.dead_letter_urls[rule_name] = url
        return url

    def dead_letters(self) -> list[DeadLetter]:
        """Every message in the rules' dead-letter queues (read without consuming them)."""
        letters = []
        for url in self.dead_letter_urls.values():
            seen: set[str] = set()
            while True:
                messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                                    MessageAttributeNames=["All"]).get("Messages", [])
                fresh = [m for m in messages if m["MessageId"] not in seen]
                if not fresh:
                    break
                for message in fresh:
                    seen.add(message["MessageId"])
                    letters.append(DeadLetter(json.loads(message["Body"]), {
                        k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}))
        return letters

    def settled(self) -> bool:
        """Every event the rules matched so far has ended (started an execution, dead-lettered or dropped): none
        is queued, being delivered or waiting for a retry. Events are queued when the upload returns, so after it
        this says "nothing more will start", without waiting for any time to pass."""
        for forwarder in self.forwarders:
            counts = self.sqs.get_queue_attributes(QueueUrl=forwarder.queue_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            if forwarder.retries or any(int(count) for count in counts.values()):
                return False
        return True

    def stop(self) -> None:
        self.stopping.set()
        for forwarder in self.forwarders:
            forwarder.wake()
        for thread in self.threads:
            thread.join(timeout=5)


def forwarder_client(service: str, endpoint_url: str | None = None) -> Any:
    """A client making one attempt per call: retries are the RetryPolicy's, counted here, not botocore's."""
    return boto3.client(service, region_name=OFFLINE_REGION, endpoint_url=endpoint_url,
                        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


@contextmanager
def eventbridge_trigger(s3: Any, state_machine_arn: str, bucket: str,
                        rules: dict[str, dict[str, Any]]) -> Iterator[Trigger]:
    """Send the bucket's events to EventBridge and forward each rule's matches, until the block ends."""
    s3.put_bucket_notification_configuration(Bucket=bucket,
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    events = boto3.client("events", region_name=OFFLINE_REGION)
    sqs = boto3.client("sqs", region_name=OFFLINE_REGION)
    trigger = Trigger(forwarder_client("stepfunctions"), sqs, state_machine_arn)
    try:
        for name, rule in rules.items():  # a queue per rule, so each event gets its own rule's transformer
            trigger.add_rule(events, name, rule)
        yield trigger
    finally:
        trigger.stop()
