"""How long an execution may last, derived from the ASL's TimeoutSeconds and Retry policies."""

from __future__ import annotations

import json

import pytest

from tools.cfn import ASL
from workflow.stepfunctions import ExecutionBounds, execution_bounds

LAMBDA_RETRY = {"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}


def test_the_workflows_worst_case_is_every_attempt_timing_out_and_every_back_off():
    definition = json.loads(ASL.read_text())
    serialize = 4 * 30 + (1 + 2 + 4)                      # 3 Lambda retries: 4 attempts of 30 s, 7 s of back-off
    classify = (1 + 3 + 4) * 60 + (1 + 2 + 4) + (1 + 2 + 4 + 8)  # Lambda and EndpointUnavailableError retries
    filter_ = 4 * 30 + 7                                   # caught as low confidence, then the review record
    record = 4 * 30 + 7
    publish = 4 * 30 + 7                                   # the VehicleNeedsReview event (PutEvents)
    expected = serialize + classify + filter_ + record + publish
    assert execution_bounds(definition) == ExecutionBounds(worst_case_s=float(expected), longest_step_s=60.0)
    assert execution_bounds(ASL.read_text()).worst_case_s == expected == 1010


def machine(**states: dict) -> dict:
    return {"StartAt": next(iter(states)), "States": states}


def test_retry_defaults_max_delay_and_the_machine_timeout_apply():
    task = {"Type": "Task", "Resource": "x", "TimeoutSeconds": 10, "End": True}
    assert execution_bounds(machine(T={**task, "Retry": [{"ErrorEquals": ["States.ALL"]}]})).worst_case_s == (
        4 * 10 + 1 + 2 + 4)  # the ASL defaults: 3 attempts, 1 s, backoff 2
    capped = {**task, "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5, "MaxAttempts": 3,
                                 "BackoffRate": 3, "MaxDelaySeconds": 12}]}
    assert execution_bounds(machine(T=capped)) == ExecutionBounds(4 * 10 + 5 + 12 + 12, 12.0)
    assert execution_bounds({**machine(T=capped), "TimeoutSeconds": 30}).worst_case_s == 30


def test_the_longest_branch_of_a_choice_or_a_catch_counts():
    definition = machine(
        C={"Type": "Choice", "Choices": [{"Variable": "$.x", "BooleanEquals": True, "Next": "Short"}],
           "Default": "Long"},
        Short={"Type": "Task", "Resource": "x", "TimeoutSeconds": 1, "End": True},
        Long={"Type": "Task", "Resource": "x", "TimeoutSeconds": 5, "Next": "End",
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Slow"}]},
        Slow={"Type": "Wait", "Seconds": 100, "Next": "End"},
        End={"Type": "Succeed"},
    )
    assert execution_bounds(definition).worst_case_s == 105
    parallel = machine(P={"Type": "Parallel", "End": True, "Retry": [LAMBDA_RETRY],
                          "Branches": [machine(A={"Type": "Task", "Resource": "x", "TimeoutSeconds": 3, "End": True}),
                                       machine(B={"Type": "Wait", "Seconds": 8, "End": True})]})
    assert execution_bounds(parallel).worst_case_s == 4 * 8 + 7


@pytest.mark.parametrize("states", [
    {"T": {"Type": "Task", "Resource": "x", "End": True}},  # the ASL default timeout: 99999999 s
    {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}},
    {"M": {"Type": "Map", "ItemProcessor": machine(P={"Type": "Pass", "End": True}), "End": True}},
    {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}},
])
def test_a_definition_without_a_bound_says_so(states):
    assert execution_bounds(machine(**states)).worst_case_s is None
