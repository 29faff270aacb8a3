"""Every error our state machines raise themselves is ours to name: the Amazon States Language reserves the
`States.` prefix ("States can report errors with other names, which must not begin with the prefix States."),
and a Fail state whose ErrorPath selects a `States.*` name ends the execution as States.Runtime instead."""

from __future__ import annotations

import json

import pytest

from tools.cfn import ASL, BATCH_ASL


def fail_states(states: dict) -> dict[str, dict]:
    found = {}
    for name, state in states.items():
        if state["Type"] == "Fail":
            found[name] = state
        for nested in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
            if nested:
                found |= fail_states(nested["States"])
    return found


@pytest.mark.parametrize("path", [ASL, BATCH_ASL], ids=lambda path: path.name)
def test_fail_states_name_their_error_and_never_with_the_reserved_prefix(path):
    for name, state in fail_states(json.loads(path.read_text())["States"]).items():
        assert "ErrorPath" not in state, f"{name}: an ErrorPath can select a reserved States.* name"
        assert "Error" in state and not state["Error"].startswith("States."), name


def test_the_batch_fails_as_batch_failed_error_with_the_maps_error_as_json_in_the_cause():
    failed = json.loads(BATCH_ASL.read_text())["States"]["BatchFailed"]
    assert (failed["Error"], failed["CausePath"]) == ("BatchFailedError", "States.JsonToString($.map_error)")
