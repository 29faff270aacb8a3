"""The events' bus and model version are template parameters (a runtime of its own: moto's state is per process,
so this module starts no other runtime)."""

from __future__ import annotations

from common.settings import staged_dataset_key
from testkit.images import png_bytes
from tests.support import SCRIPTED_STACK
from workflow.offline.runtime import OfflineRuntime


def test_the_bus_and_model_version_come_from_the_template_parameters(endpoint, lambda_logs):
    overrides = {**SCRIPTED_STACK, "EventBusName": "dispatch",
                 "ModelVersion": "scones-image-classification-20260101-000000"}
    with OfflineRuntime(endpoint.url, lambda_log_dir=lambda_logs, parameter_overrides=overrides,
                        trigger=False) as offline:
        offline.put_image(staged_dataset_key("test/a.png"), png_bytes(seed=34))
        offline.run(staged_dataset_key("test/a.png"))
        (event,) = offline.events.drain()
        rules = offline.events_client.list_rules(EventBusName="dispatch")["Rules"]
    assert event["detail"]["model_version"] == "scones-image-classification-20260101-000000"
    assert [rule["Name"] for rule in rules] == ["classification-events-to-queue"]
