"""The workflow's events offline: PutEvents (moto's EventBridge) -> a rule -> a queue the summaries read.

On AWS, dispatch teams write their own rules on the bus (EventBusName) for source
`scones.image-classification`; offline one such rule sends every event to a local queue, so a run
can count what reached dispatch: one event per classified or reviewed image.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

EVENT_SOURCE = "scones.image-classification"
CLASSIFIED = "VehicleClassified"
NEEDS_REVIEW = "VehicleNeedsReview"
QUEUE_NAME = "classification-events"


def rule_to_queue(events: Any, sqs: Any, rule: str, queue: str, pattern: dict[str, Any], target_id: str,
                  bus: str = "default") -> tuple[str, str]:
    """An EventBridge rule on `bus` whose one target is a new SQS queue (how events are read offline): the
    queue's URL and the rule's ARN."""
    queue_url = str(sqs.create_queue(QueueName=queue)["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule_arn = str(events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern),
                                   State="ENABLED")["RuleArn"])
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": target_id, "Arn": queue_arn}])
    return queue_url, rule_arn


class EventsQueue:
    """A rule on `bus` matching the workflow's source, targeting a queue; `drain()` returns what arrived.

    A collector thread keeps the queue short by reading as events arrive: moto's SQS counts a queue's
    messages on every send, so a queue left to fill makes each PutEvents slower than the last (1,000
    executions took 16 executions/s instead of 19 before the queue was read as it filled).
    """

    def __init__(self, events: Any, sqs: Any, bus: str) -> None:
        self.sqs = sqs
        if bus != "default":
            events.create_event_bus(Name=bus)
        self.queue_url, _ = rule_to_queue(events, sqs, f"{QUEUE_NAME}-to-queue", QUEUE_NAME,
                                          {"source": [EVENT_SOURCE]}, "ClassificationEventsQueue", bus)
        self._received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._collector = threading.Thread(target=self._collect, name="classification-events", daemon=True)

    def _receive(self, wait_seconds: int) -> int:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=wait_seconds).get("Messages", [])
        for message in messages:
            with self._lock:
                self._received.append(json.loads(message["Body"]))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _collect(self) -> None:
        while not self._stopping.is_set():
            self._receive(wait_seconds=1)

    def start(self) -> EventsQueue:
        self._collector.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._collector.is_alive():
            self._collector.join(timeout=5)

    def drain(self) -> list[dict[str, Any]]:
        """Every event that arrived since the last drain, oldest first as far as SQS orders them."""
        while self._receive(wait_seconds=0):
            pass
        with self._lock:
            received, self._received = self._received, []
        return received


@contextmanager
def events_queue(events: Any, sqs: Any, bus: str) -> Iterator[EventsQueue]:
    """An EventsQueue collecting for the block."""
    queue = EventsQueue(events, sqs, bus).start()
    try:
        yield queue
    finally:
        queue.stop()


def count_by_type(events: list[dict[str, Any]]) -> dict[str, int]:
    """{detail-type: count}, with both of the workflow's types present."""
    counts = Counter(event.get("detail-type", "") for event in events)
    return {CLASSIFIED: counts.pop(CLASSIFIED, 0), NEEDS_REVIEW: counts.pop(NEEDS_REVIEW, 0), **counts}
