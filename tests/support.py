"""Helpers shared by unit and integration tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from common.settings import REPO_ROOT

EVENTS_DIR = REPO_ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    """Load a file from events/: the same files `sam local invoke -e` uses."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


@dataclass
class LambdaContextStub:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
