"""The demo: the real ASL and handlers offline against a scripted stand-in endpoint, in seconds.

One confident image of the first class (SUCCEEDED) and one of the second that the stand-in is unsure of (FAILED
with LowConfidenceError, recorded for review). The classes are the template's ClassNames, and the stand-in answers
one probability per class, as the model trained on them does. Real CIFAR-100 pictures when the shared data has the
class, else generated ones.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from common import settings
from common.servers import BackgroundServer
from imaging.preprocess import MODEL_SIDE
from workflow.offline.runtime import OfflineRuntime
from workflow.offline.stub_endpoint import Answer, ScriptedEndpoint
from workflow.stepfunctions import ExecutionResult


@dataclass(frozen=True)
class DemoRun:
    endpoint_url: str
    lambda_url: str
    state_machine_arn: str
    bucket: str
    executions: list[tuple[ExecutionResult, list[dict[str, Any]]]]  # each result with its history
    review_records: dict[str, dict[str, Any]]


def demo_images(labels: list[str]) -> Iterator[tuple[str, bytes]]:
    for label in labels:
        folder = settings.SHARED_TRAIN_IMAGES / label
        files = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if files:
            yield settings.staged_dataset_key(f"test/{files[0].name}"), files[0].read_bytes()
            continue
        pixels = np.random.default_rng(len(label)).integers(0, 256, (MODEL_SIDE, MODEL_SIDE, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        yield settings.staged_dataset_key(f"test/{label}_generated.png"), buffer.getvalue()


def run_demo(lambda_log_dir: Path) -> DemoRun:
    classes, threshold = settings.class_names(), settings.confidence_threshold()
    # Confident: halfway from the threshold to 1. Unsure: halfway from a uniform guess to the threshold.
    endpoint = ScriptedEndpoint(default=Answer.top(0, round((1 / len(classes) + threshold) / 2, 4), len(classes)))
    endpoint.enqueue([Answer.top(0, round((1 + threshold) / 2, 4), len(classes))])
    with BackgroundServer(endpoint.app(), name="scripted-endpoint") as server, \
            OfflineRuntime(server.url, lambda_log_dir=lambda_log_dir) as runtime:
        executions = []
        for key, data in demo_images(classes[:2]):
            runtime.put_image(key, data)
            result = runtime.run(key)
            executions.append((result, runtime.history(result.execution_arn)))
        return DemoRun(server.url, runtime.lambda_url, runtime.state_machine_arn, runtime.bucket, executions,
                       runtime.review_records())
