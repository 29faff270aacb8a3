"""Uploads under incoming/ start executions (the template's EventBridge rule); many executions at once."""

from __future__ import annotations

import warnings

from common.settings import staged_dataset_key
from testkit.images import png_bytes
from tests.support import wait_until
from workflow.executions import outcome_of, run_all
from workflow.offline.stub_endpoint import Answer


def wait_for_triggered(runtime, count: int) -> list[str]:
    wait_until(lambda: len(runtime.triggered_executions) >= count, f"{count} triggered executions")
    return list(runtime.triggered_executions)


def test_an_upload_under_incoming_starts_an_execution_with_the_starter_input(runtime, endpoint):
    already = len(runtime.triggered_executions)
    runtime.put_image("test/not-a-trigger.png", png_bytes())
    runtime.put_image("incoming/driver-42.png", png_bytes(seed=42))

    triggered = wait_for_triggered(runtime, already + 1)[already:]

    assert len(triggered) == 1
    result = runtime.wait(triggered[0])
    assert result.input == {"image_data": "", "s3_bucket": "scones-offline", "s3_key": "incoming/driver-42.png"}
    assert result.status == "SUCCEEDED"
    wait_until(runtime.trigger_settled, "the trigger to end every event it matched")
    assert len(runtime.triggered_executions) == already + 1  # test/ uploads start nothing


def test_concurrent_executions_are_all_accounted_for_without_mixing_metrics(runtime, endpoint):
    keys = [staged_dataset_key(f"test/many_{i:03d}.png") for i in range(40)]  # serialize-image may read them
    for i, key in enumerate(keys):
        runtime.put_image(key, png_bytes(seed=i))
    endpoint.enqueue([Answer.probabilities(0.6, 0.4)] * 10)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_all(keys, lambda key: outcome_of(runtime.run(key)), concurrency=8)

    assert len(summary.outcomes) == 40
    assert summary.counts == {"succeeded": 30, "review": 10}
    # Powertools keeps metrics at class level: two invocations in one sandbox at once would flush each
    # other's metrics and warn that one had none. One invocation per sandbox at a time never does.
    assert [str(w.message) for w in caught if "No application metrics" in str(w.message)] == []
