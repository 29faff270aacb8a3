"""A newcomer's first hour, replayed with the real entry points in subprocesses: each mistake ends in one line on
stderr with the documented exit status, `--debug` shows the traceback, `--help` survives a broken AWS_PROFILE,
shell completion answers, and SDK chatter stays off the terminal."""

from __future__ import annotations

import socket
import sys

import pytest

from common.settings import package_version
from testkit.aws_stub import FAULTS, aws_error_stub
from tests.support import HANG_GUARD_S, CliResult, bare_aws_environment, run_module

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def test_stage_dry_run_without_aws_setup_is_one_line(tmp_path):
    (tmp_path / "out" / "dataset").mkdir(parents=True)
    result = run_module("data_prep", "stage", "--dry-run", env=bare_aws_environment(tmp_path / "home"), cwd=tmp_path)
    assert (result.status, result.stdout) == (3, "")
    assert result.stderr_lines == ["no AWS region set: pass --region, or set AWS_REGION (or a region in your AWS "
                                   "profile or in samconfig.toml)"]


def test_sagemaker_training_refused_is_one_line_without_the_sdks_notices(tmp_path):
    """The identity check passes and the image table is read from the SageMaker SDK, then S3 refuses: the SDK's INFO
    lines (on stdout) and its v2 deprecation notice (twice, on stderr) stay off the terminal."""
    environment = bare_aws_environment(tmp_path / "home", AWS_REGION="eu-west-1", AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
                                       AWS_SECRET_ACCESS_KEY="secret")
    with aws_error_stub(FAULTS["denied"], allow_identity=True) as stub:
        environment["AWS_ENDPOINT_URL"] = stub.url
        result = run_module("data_prep", "train", "sagemaker", "--bucket", "scones-data", "--role", ROLE,
                            env=environment, cwd=tmp_path)
    assert stub.requests[:2] == ["query:GetCallerIdentity", "s3:GET /scones-data/scones-image-classification/train.lst"]
    assert (result.status, result.stdout) == (3, "")
    assert result.stderr_lines == [
        "access denied (AccessDenied in GetObject): User: arn:aws:iam::123456789012:user/dev is not authorized to "
        "perform this action. Ask for that permission or use another profile"]


def test_debug_shows_the_traceback_instead(tmp_path):
    environment = bare_aws_environment(tmp_path / "home")
    flag = run_module("workflow", "start-executions", "--debug", env=environment, cwd=tmp_path)
    variable = run_module("workflow", "start-executions", env={**environment, "SCONES_DEBUG": "1"}, cwd=tmp_path)
    for result in (flag, variable):
        assert result.status == 3  # the traceback, and still the status the error maps to (AWS/environment)
        assert result.stderr.startswith("Traceback (most recent call last):")
        assert result.stderr_lines[-1] == "botocore.exceptions.NoRegionError: You must specify a region."


@pytest.mark.parametrize("module", ["data_prep", "workflow", "monitoring", "review"])
def test_help_works_with_an_aws_profile_that_does_not_exist(module, tmp_path):
    result = run_module(module, "--help", env=bare_aws_environment(tmp_path / "home", AWS_PROFILE="nope"),
                        cwd=tmp_path)
    assert (result.status, result.stderr) == (0, "")
    assert "--debug" in result.stdout and "--version" in result.stdout and "Exit status:" in result.stdout


@pytest.mark.parametrize("command", [("data_prep", "serve", "--capture", "out/data_capture"),
                                     ("workflow", "serve-api")])
def test_a_port_in_use_is_one_line_at_once(command, tiny_model, tmp_path):
    """"At once" is shown by what did not happen, not by a clock: nothing was started before the port was found
    taken (serve: no capture folder created, no model loaded; serve-api: no endpoint, moto or Lambda API, whose
    logs and capture would be under out/)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_module(*command, "--model-dir", str(tiny_model), "--port", str(port),
                            env=bare_aws_environment(tmp_path / "home"), cwd=tmp_path)
    assert (result.status, result.stdout) == (2, "")
    assert result.stderr_lines == [f"PortInUseError: port {port} on 127.0.0.1 is in use: stop what listens there, or "
                                   "choose another port (0: any free port)"]
    assert not (tmp_path / "out").exists()  # nothing started first (serve waited 10 s, then printed 42 lines)


def as_script(script: str, *args: str, environment: dict[str, str], cwd, folder: str = "/venv/bin") -> CliResult:
    """The console script as the shell runs it: argv[0] is the script's path as the shell found it (what
    pyproject.toml installs; `.venv/bin/scones-workflow` typed, or the PATH entry's folder)."""
    import subprocess

    module = {"scones-workflow": "workflow", "scones-data-prep": "data_prep", "scones-monitoring": "monitoring"}[script]
    code = f"import sys; sys.argv[0] = '{folder}/{script}'; from {module}.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=HANG_GUARD_S, env=environment)
    return CliResult(done.returncode, done.stdout, done.stderr)


def test_shell_completion_of_the_console_scripts(tmp_path):
    environment = bare_aws_environment(tmp_path / "home")
    source = as_script("scones-workflow", environment={**environment, "_SCONES_WORKFLOW_COMPLETE": "bash_source"},
                       cwd=tmp_path)
    assert source.status == 0
    assert "complete -o nosort -F _scones_workflow_completion scones-workflow" in source.stdout
    words = as_script("scones-workflow", cwd=tmp_path, environment={
        **environment, "_SCONES_WORKFLOW_COMPLETE": "bash_complete", "COMP_WORDS": "scones-workflow st",
        "COMP_CWORD": "1"})
    assert words.stdout.split() == ["plain,start-executions"]
    options = as_script("scones-data-prep", cwd=tmp_path, environment={
        **environment, "_SCONES_DATA_PREP_COMPLETE": "bash_complete", "COMP_WORDS": "scones-data-prep stage --pro",
        "COMP_CWORD": "2"})
    assert options.stdout.split() == ["plain,--profile"]


def test_the_console_scripts_name_themselves(tmp_path):
    result = as_script("scones-monitoring", "--version", environment=bare_aws_environment(tmp_path / "home"),
                       cwd=tmp_path)
    assert (result.status, result.stdout) == (0, f"scones-monitoring {package_version()}\n")


@pytest.mark.parametrize("folder", [".venv/bin", "/opt/scones/bin"])
def test_a_console_scripts_usage_error_names_the_command_as_it_was_run(folder, tmp_path):
    """Typed as `.venv/bin/scones-workflow` (or run from a folder not on PATH), "Try '...'" must name that path:
    a bare `scones-workflow` is not a command in that shell."""
    result = as_script("scones-workflow", "run", "--limit", "0", environment=bare_aws_environment(tmp_path / "home"),
                       cwd=tmp_path, folder=folder)
    assert result.status == 2
    assert f"Usage: {folder}/scones-workflow run [OPTIONS]" in result.stderr
    assert f"Try '{folder}/scones-workflow run --help' for help." in result.stderr


def test_a_console_script_found_on_path_is_named_as_typed(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scones-workflow").write_text("#!/bin/sh\n")
    (bin_dir / "scones-workflow").chmod(0o755)
    environment = bare_aws_environment(tmp_path / "home")
    result = as_script("scones-workflow", "run", "--limit", "0", cwd=tmp_path, folder=str(bin_dir),
                       environment={**environment, "PATH": f"{bin_dir}:{environment.get('PATH', '')}"})
    assert result.status == 2
    assert "Try 'scones-workflow run --help' for help." in result.stderr


def test_the_offline_run_is_not_sent_to_the_users_aws(tiny_model, tmp_path):
    """A user's AWS settings are for AWS: an endpoint override at a closed port (for every service and for S3), a
    profile that does not exist, a config file whose profile sends every call to that port, FIPS and dual-stack
    endpoints (hosts moto does not answer) change nothing in an offline run."""
    import json

    from common import settings
    from testkit.images import labelled_folder

    with socket.socket() as closed:  # bound, never listening: a connection to it is refused
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
        config = tmp_path / "aws-config"
        config.write_text(f"[default]\nendpoint_url = {nowhere}\nregion = eu-west-3\n")
        environment = bare_aws_environment(
            tmp_path / "home", AWS_ENDPOINT_URL=nowhere, AWS_ENDPOINT_URL_S3=nowhere, AWS_PROFILE="nope",
            AWS_DEFAULT_PROFILE="nope", AWS_USE_FIPS_ENDPOINT="true", AWS_USE_DUALSTACK_ENDPOINT="true")
        environment["AWS_CONFIG_FILE"] = str(config)
        images = labelled_folder(tmp_path / "images", per_class=10, classes=settings.class_names())
        result = run_module("workflow", "run", "--source", str(images), "--model-dir", str(tiny_model), "--out",
                            str(tmp_path / "out"), env=environment, cwd=tmp_path)
    assert result.status == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["executions"] == 2 and summary["succeeded"] + summary["review"] == 2
