"""The workflow's events offline: PutEvents (moto's EventBridge) -> a rule -> a queue the summaries read.

On AWS, dispatch teams write their own rules on the bus (EventBusName) for source
`scones.image-classification`; offline one such rule sends every event to a local queue, so a run
can count what reached dispatch: one event per classified or reviewed image.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

EVENT_SOURCE = "scones.image-classification"
CLASSIFIED = "VehicleClassified"
NEEDS_REVIEW = "VehicleNeedsReview"
QUEUE_NAME = "classification-events"


class EventsQueue:
    """A rule on `bus` matching the workflow's source, targeting a queue; `drain()` reads what arrived."""

    def __init__(self, events: Any, sqs: Any, bus: str) -> None:
        self.sqs = sqs
        if bus != "default":
            events.create_event_bus(Name=bus)
        self.queue_url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"]
        events.put_rule(Name=f"{QUEUE_NAME}-to-queue", EventBusName=bus, State="ENABLED",
                        EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
        events.put_targets(Rule=f"{QUEUE_NAME}-to-queue", EventBusName=bus,
                           Targets=[{"Id": "ClassificationEventsQueue", "Arn": queue_arn}])

    def drain(self) -> list[dict[str, Any]]:
        """Every event waiting on the queue (deleted as read), oldest first as far as SQS orders them."""
        received: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def count_by_type(events: list[dict[str, Any]]) -> dict[str, int]:
    """{detail-type: count}, with both of the workflow's types present."""
    counts = Counter(event.get("detail-type", "") for event in events)
    return {CLASSIFIED: counts.pop(CLASSIFIED, 0), NEEDS_REVIEW: counts.pop(NEEDS_REVIEW, 0), **counts}
