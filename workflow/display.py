"""Console rendering of executions and summaries, for the workflow commands (offline and on AWS)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from workflow.stepfunctions import ExecutionResult


def history_table(events: list[dict[str, Any]], title: str) -> Table:
    """One row per history event: the state it belongs to and the detail that matters."""
    table = Table(title=title, show_lines=False)
    for column in ("#", "event", "state", "detail"):
        table.add_column(column, overflow="fold")
    state = ""
    for event in events:
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        state = details.get("name", state)
        detail = details.get("error") or details.get("resource") or ""
        if event["type"] == "ExecutionSucceeded":
            detail = "output: " + details.get("output", "")[:120]
        table.add_row(str(event["id"]), event["type"], state, str(detail))
    return table


def print_result(console: Console, result: ExecutionResult) -> None:
    colour = "green" if result.status == "SUCCEEDED" else "red"
    key = result.input.get("s3_key")
    console.print(f"[bold {colour}]{result.status}[/] {key} in {result.duration_s * 1000:.0f} ms")
    if result.output is not None:
        console.print_json(json.dumps(result.output))
    if result.error:
        console.print(f"  error: [bold]{result.error}[/]: {result.cause_message}")
