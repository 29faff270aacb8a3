"""`workflow cleanup` follows the one convention for declining and dry runs (README: Command-line tools): answering no
and --dry-run delete nothing, say so and exit 0; Ctrl-C is 130; no one to answer is a usage error naming --yes."""

from __future__ import annotations

import io

import boto3
import click
import pytest
from moto import mock_aws

from tests.support import run_main
from tests.unit.test_aws_ops import make_endpoint
from workflow.cli import main

PLAN = ["will delete:", "  SageMaker endpoint scones-ep", "  SageMaker endpoint config scones-ep-config",
        "  SageMaker model scones-ep-model"]


@pytest.fixture
def sagemaker():
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        make_endpoint(client, "scones-ep")
        yield client


def cleanup(monkeypatch, capsys, answer: str | None, *extra: str):
    """Run cleanup with `answer` typed at the prompt (None: Ctrl-C at the prompt)."""
    if answer is None:
        def interrupted(prompt: str = "") -> str:
            raise KeyboardInterrupt

        monkeypatch.setattr(click.termui, "visible_prompt_func", interrupted)
    else:
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    return run_main(main, ["cleanup", "--endpoint-name", "scones-ep", "--region", "us-east-1", *extra],
                    monkeypatch=monkeypatch, capsys=capsys)


def endpoints(sagemaker) -> list[str]:
    return [endpoint["EndpointName"] for endpoint in sagemaker.list_endpoints()["Endpoints"]]


def test_answering_no_deletes_nothing_and_exits_0(sagemaker, monkeypatch, capsys):
    result = cleanup(monkeypatch, capsys, "n\n")
    assert (result.status, result.stdout.splitlines()) == (0, [*PLAN, "declined: nothing was deleted"])
    assert result.stderr == "proceed? [y/N]: "
    assert endpoints(sagemaker) == ["scones-ep"]


def test_a_dry_run_lists_the_plan_asks_nothing_and_deletes_nothing(sagemaker, monkeypatch, capsys):
    result = cleanup(monkeypatch, capsys, "", "--dry-run")
    assert (result.status, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["would delete:", *PLAN[1:], "dry run: nothing was deleted"]
    assert endpoints(sagemaker) == ["scones-ep"]


def test_ctrl_c_at_the_prompt_is_aborted_130(sagemaker, monkeypatch, capsys):
    result = cleanup(monkeypatch, capsys, None)
    assert (result.status, result.stdout.splitlines(), result.stderr_lines) == (130, PLAN, ["aborted"])
    assert endpoints(sagemaker) == ["scones-ep"]


def test_no_one_to_answer_is_a_usage_error_that_names_yes_and_dry_run(sagemaker, monkeypatch, capsys):
    result = cleanup(monkeypatch, capsys, "")  # stdin closed: a script without --yes
    assert (result.status, result.stdout.splitlines()) == (2, PLAN)
    assert result.stderr_lines[-1] == ("Error: no answer to 'proceed?' (stdin is closed): pass --yes to go ahead, or "
                                       "--dry-run to see what would change")
    assert endpoints(sagemaker) == ["scones-ep"]


def test_yes_deletes_and_says_what(sagemaker, monkeypatch, capsys):
    result = cleanup(monkeypatch, capsys, "y\n")
    assert result.status == 0 and result.stdout.splitlines()[len(PLAN):] == [
        "deleted endpoint scones-ep", "deleted endpoint config scones-ep-config", "deleted model scones-ep-model"]
    assert endpoints(sagemaker) == []


def test_yes_and_dry_run_together_are_refused(monkeypatch, capsys):
    result = run_main(main, ["cleanup", "--yes", "--dry-run"], monkeypatch=monkeypatch, capsys=capsys)
    assert result.status == 2 and result.stderr_lines[-1] == ("Error: --yes deletes, --dry-run deletes nothing: give "
                                                              "one")


def test_objects_s3_refused_to_delete_end_the_cleanup_in_one_line_exit_3(sagemaker, monkeypatch, capsys):
    import workflow.cli
    from tests.unit.test_aws_ops import refusing_s3

    clients = {"sagemaker": sagemaker, "cloudformation": boto3.client("cloudformation", region_name="us-east-1"),
               "s3": refusing_s3(["review/a.json"], {"review/a.json": "AccessDenied"})}
    monkeypatch.setattr(workflow.cli, "aws_clients", lambda region, profile: clients)
    result = cleanup(monkeypatch, capsys, "", "--bucket", "data", "--prefix", "review", "--yes")
    assert result.status == 3
    assert result.stdout.splitlines()[-4:] == ["deleted endpoint scones-ep", "deleted endpoint config scones-ep-config",
                                               "deleted model scones-ep-model",
                                               "deleted 0 objects under s3://data/review/ (1 refused)"]
    assert result.stderr_lines == ["CleanupIncompleteError: S3 refused to delete 1 objects (first: review/a.json: "
                                   "AccessDenied: Access Denied); they are still there: check s3:DeleteObject on "
                                   "them (and any Object Lock), then run cleanup again"]
