"""The conventions every command-line tool shares (docs/cli.md): an example in every --help,
--version and --debug on each tool, --region/--profile on every AWS command, console scripts, samconfig.toml's
defaults, named errors in one line, plain connection lines, library output kept off the terminal."""

from __future__ import annotations

import logging
import sys
import tomllib
import warnings
from pathlib import Path

import click
import pytest
from rich.console import Console

from common import settings
from common.cli import script_name, terminal_for_our_lines
from common.settings import REPO_ROOT
from common.stats import stratified_sample
from data_prep.cli import cli as data_prep_cli
from data_prep.cli import main as data_prep_main
from monitoring.cli import cli as monitoring_cli
from monitoring.cli import main as monitoring_main
from review.cli import cli as review_cli
from review.cli import main as review_main
from tests.support import bare_aws_variables, run_main
from workflow.cli import cli as workflow_cli
from workflow.cli import hold_services
from workflow.cli import main as workflow_main

GROUPS = {"data_prep": (data_prep_cli, data_prep_main), "workflow": (workflow_cli, workflow_main),
          "monitoring": (monitoring_cli, monitoring_main), "review": (review_cli, review_main)}
AWS_COMMANDS = {("data_prep", "stage"), ("data_prep", "all"), ("data_prep", "train local"),  # with --labels s3://
                ("data_prep", "train sagemaker"), ("data_prep", "deploy new"), ("data_prep", "deploy update"),
                ("data_prep", "serve"),  # with --capture s3://
                ("data_prep", "evaluate"),  # a model in S3 or a training job
                ("workflow", "start-executions"), ("workflow", "enable-trigger"), ("workflow", "cleanup"),
                ("workflow", "classify-prefix"),
                ("monitoring", "report"), ("monitoring", "drift"), ("monitoring", "upload-baseline"),
                ("monitoring", "quality"),
                ("review", "serve")}


def command_names(group: click.Group) -> list[str]:
    """Every command, a group's as `group sub` (`train local`)."""
    return [f"{name} {sub}" if isinstance(command, click.Group) else name for name, command in group.commands.items()
            for sub in (command.commands if isinstance(command, click.Group) else [""])]


def command_of(group: click.Group, name: str) -> click.Command:
    for part in name.split():
        found = group.commands[part] if isinstance(group, click.Group) else None
        assert found is not None
        group = found  # type: ignore[assignment]
    return group


COMMANDS = [(group, name) for group, (cli, _) in GROUPS.items() for name in command_names(cli)]


@pytest.mark.parametrize(("group", "name"), COMMANDS, ids=[f"{g} {n}" for g, n in COMMANDS])
def test_every_command_helps_with_an_example_even_with_a_broken_aws_profile(group, name, tmp_path, monkeypatch,
                                                                            capsys):
    result = run_main(GROUPS[group][1], [*name.split(), "--help"], monkeypatch=monkeypatch, capsys=capsys,
                      environment=bare_aws_variables(tmp_path, AWS_PROFILE="nope"))
    assert (result.status, result.stderr) == (0, "")
    assert "Example" in result.stdout and f"python -m {group} {name}" in result.stdout
    options = {opt for param in command_of(GROUPS[group][0], name).params for opt in param.opts}
    assert {"--region", "--profile"} <= options if (group, name) in AWS_COMMANDS else not options & {"--profile"}


@pytest.mark.parametrize("group", GROUPS)
def test_each_tool_has_version_and_debug(group, monkeypatch, capsys):
    version = run_main(GROUPS[group][1], ["--version"], monkeypatch=monkeypatch, capsys=capsys)
    assert (version.status, version.stdout) == (0, f".venv/bin/python -m {group} {settings.package_version()}\n")
    helped = run_main(GROUPS[group][1], ["--help"], monkeypatch=monkeypatch, capsys=capsys)
    assert "--debug" in helped.stdout and "SCONES_DEBUG=1" in helped.stdout
    assert "Exit status: 0 done" in helped.stdout


def test_console_scripts_are_the_cli_mains():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {script_name(f"python -m {group}"): f"{group}.cli:main" for group in GROUPS}
    assert script_name("python -m data_prep") == "scones-data-prep"


def test_the_version_is_pyprojects():
    assert settings.package_version() == tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_samconfig_parameter_overrides_are_the_aws_defaults(tmp_path):
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text('version = 0.1\n[default.global.parameters]\nstack_name = "s"\nregion = "eu-west-1"\n'
                         '[default.deploy.parameters]\nparameter_overrides = "EndpointName=\\"prod-classifier\\" '
                         'DataBucketName=\\"my-data\\" ConfidenceThreshold=0.9"\n')
    parameters = settings.deployed_parameters(samconfig)
    assert (parameters["EndpointName"], parameters["DataBucketName"], parameters["ConfidenceThreshold"]) == (
        "prod-classifier", "my-data", "0.9")
    assert parameters["ClassNames"] == settings.template_parameter_defaults()["ClassNames"]  # not overridden
    assert settings.samconfig(samconfig)["region"] == "eu-west-1"
    # the repository's samconfig.toml names no bucket: the SageMaker default bucket, as the stack uses
    assert settings.deployed_bucket() is None
    assert settings.deployed_endpoint_name() == "scones-image-classifier"


def test_a_limit_is_a_seeded_sample_stratified_by_label():
    labels = {f"test/bicycle_{i:03}.png": "bicycle" for i in range(100)}
    labels |= {f"test/motorcycle_{i:03}.png": "motorcycle" for i in range(96)}
    sample = stratified_sample(labels, 20, seed=0)
    assert len(sample) == 20 and sample == sorted(sample)
    assert sum(labels[key] == "bicycle" for key in sample) == 10  # 20 x 100/196 = 10.2 and 20 x 96/196 = 9.8
    assert sample == stratified_sample(labels, 20, seed=0) != stratified_sample(labels, 20, seed=1)
    assert sorted(labels)[:20] != sample  # not the first 20 of a class-sorted list (all bicycles)
    assert stratified_sample(labels, None) == stratified_sample(labels, 500) == sorted(labels)
    assert len(stratified_sample(labels, 1)) == 1


def test_keep_running_lines_are_printed_whole_and_written_to_a_file(tmp_path, monkeypatch):
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:ImageClassificationStateMachine"
    lines = ["export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1",
             f"aws --endpoint-url http://127.0.0.1:40123 stepfunctions list-executions --state-machine-arn {arn}",
             "literal [brackets] stay"]

    class Runtime:
        def connection_help(self):
            return lines

    class Running:
        runtime = Runtime()

    narrow = Console(width=40, record=True, file=open(tmp_path / "screen", "w"))  # noqa: SIM115
    monkeypatch.setattr("threading.Event.wait", lambda self, timeout=None: True)  # Ctrl-C at once
    hold_services(tmp_path, narrow)(Running())  # type: ignore[arg-type]
    assert narrow.export_text().splitlines() == lines  # never wrapped at 40 columns, no markup
    assert (tmp_path / "connection.txt").read_text().splitlines() == lines


def test_library_output_goes_to_the_log_and_ours_to_the_terminal(tmp_path, capsys):
    from common.cli import err

    made_before = logging.getLogger("tests.library.before")
    made_before.addHandler(logging.StreamHandler(sys.stderr))
    made_before.propagate = False
    with terminal_for_our_lines(tmp_path / "run.log") as log:
        made_during = logging.getLogger("tests.library.during")  # as torch makes its own handler on import
        made_during.addHandler(logging.StreamHandler())
        made_during.propagate = False
        made_before.warning("torchvision is not installed. Skipping torchvision::nms")
        made_during.warning("from a handler made inside the block")
        logging.getLogger("tests.library.root").warning("through the root logger")
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, stacklevel=1)
        print("a library's print to stderr", file=sys.stderr)
        err.print("training 1/1 epochs")
    made_before.warning("after the block: the terminal again")
    terminal = capsys.readouterr().err
    assert terminal.splitlines() == ["training 1/1 epochs", "after the block: the terminal again"]
    written = (tmp_path / "run.log").read_text()
    for text in ("torchvision is not installed", "from a handler made inside", "through the root logger",
                 "FutureWarning: `isinstance(treespec, LeafSpec)` is deprecated", "a library's print"):
        assert text in written
    assert log.note() == f"library warnings and logs: {tmp_path / 'run.log'}"


def test_workflow_run_checks_the_model_folder_before_anything_long(tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "metadata.json").write_text('{"class_names": ["bicycle", "motorcycle"]}')  # no model.onnx
    monkeypatch.chdir(tmp_path)
    result = run_main(workflow_main, ["run", "--model-dir", "model", "--url", "http://127.0.0.1:9/never"],
                      monkeypatch=monkeypatch, capsys=capsys)
    assert (result.status, result.stdout) == (2, "")
    assert result.stderr_lines == ["ArtefactError: model/model.onnx does not exist: the model folder is incomplete: "
                                   "train again"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no download, no dataset, no out/


@pytest.mark.parametrize("metadata,model_bytes,line", [
    ("{}", b"", "ArtefactError: model/metadata.json names no class list (\"class_names\": two or more names): the "
               "model folder is incomplete: train again"),
    ('{"class_names": ["bicycle", "motorcycle"]}', b"not an onnx graph, or one cut short",
     "ArtefactError: model/model.onnx cannot be loaded as an ONNX model ([ONNXRuntimeError] : 7 : INVALID_PROTOBUF : "
     "Load model from model/model.onnx failed:Protobuf parsing failed.): train again"),
], ids=["metadata without classes", "junk model.onnx"])
def test_a_broken_model_folder_is_one_line_not_a_traceback(metadata, model_bytes, line, tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "metadata.json").write_text(metadata)
    (model / "model.onnx").write_bytes(model_bytes)
    (model / "baseline.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    result = run_main(data_prep_main, ["serve", "--model-dir", "model", "--port", "0"], monkeypatch=monkeypatch,
                      capsys=capsys)
    assert (result.status, result.stdout, result.stderr_lines) == (2, "", [line])


def test_local_training_without_a_dataset_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    result = run_main(data_prep_main, ["train", "local"], monkeypatch=monkeypatch, capsys=capsys)
    assert (result.status, result.stdout) == (2, "")
    assert result.stderr_lines == ["ArtefactError: out/dataset does not exist: build the dataset with "
                                   "`.venv/bin/python -m data_prep transform`, or pass --data-dir"]


def test_transform_before_extract_says_how_to_get_the_archive(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    result = run_main(data_prep_main, ["transform"], monkeypatch=monkeypatch, capsys=capsys)
    assert (result.status, result.stdout) == (2, "")
    assert result.stderr_lines == ["DataPrepError: out/cache/cifar-100-python.tar.gz does not exist: download it with "
                                   "`.venv/bin/python -m data_prep extract`, or pass --source (a CIFAR-100 archive or "
                                   "a folder of <label>/ images)"]


def test_a_path_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    from testkit.images import labelled_folder

    photos = labelled_folder(tmp_path / "photos", per_class=3, classes=settings.class_names())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_main(data_prep_main, ["transform", "--source", str(photos), "--out", str(blocker / "dataset")],
                      monkeypatch=monkeypatch, capsys=capsys)
    assert (result.status, result.stdout) == (2, "")
    assert len(result.stderr_lines) == 1
    assert result.stderr_lines[0].startswith("NotADirectoryError: ") and str(blocker) in result.stderr_lines[0]
    assert result.stderr_lines[0].endswith(": Not a directory (check the path)")


def test_usage_errors_are_clicks_with_status_2(monkeypatch, capsys):
    result = run_main(workflow_main, ["run", "--limit", "0"], monkeypatch=monkeypatch, capsys=capsys)
    assert result.status == 2 and result.stdout == ""
    assert result.stderr_lines[-1].startswith("Error: Invalid value for '--limit'")


def test_aws_option_defaults_name_their_source():
    deploy = command_of(data_prep_cli, "deploy new")
    endpoint = next(p for p in deploy.params if p.name == "endpoint_name")
    assert isinstance(endpoint, click.Option) and endpoint.show_default == (
        "samconfig.toml's EndpointName, else the template's")
    assert callable(endpoint.default) and endpoint.default() == "scones-image-classifier"
    assert Path(settings.DEFAULT_LAYOUT.root) == Path("out")


def test_a_lazy_client_needs_aws_only_when_used(tmp_path, monkeypatch):
    """`train local --labels DIR` makes its S3 client lazily: labels on disk need no AWS setup."""
    from botocore.exceptions import NoRegionError

    from common.aws import lazy_client

    for name in [name for name in __import__("os").environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in bare_aws_variables(tmp_path).items():
        monkeypatch.setenv(name, value)
    s3 = lazy_client("s3", None, None)  # nothing happens yet
    with pytest.raises(NoRegionError):
        s3.list_buckets()


def test_a_bug_is_status_4_with_its_traceback_never_1_which_reads_as_a_verdict(tmp_path, monkeypatch, capsys):
    import common.model_archive

    def broken(*args, **kwargs):
        raise KeyError("class_names")

    monkeypatch.setattr(common.model_archive, "resolve_model", broken)
    monkeypatch.chdir(tmp_path)
    for folder in ("new", "old", "eval"):
        (tmp_path / folder).mkdir()
    result = run_main(data_prep_main, ["evaluate", "--model-dir", "new", "--baseline-model-dir", "old", "--data-dir",
                                       "eval"], monkeypatch=monkeypatch, capsys=capsys)
    assert result.status == 4 and result.stdout == ""
    assert "Traceback (most recent call last):" in result.stderr_lines[0]
    assert result.stderr_lines[-1] == "unexpected error (a bug, not your input): KeyError; the traceback is above"


def test_the_repositorys_samconfig_copies_no_template_default_but_what_a_deployment_decides():
    decided = {"EndpointName", "DataBucketName", "ModelVersion"}  # what `deploy new --update-samconfig` writes
    text = (REPO_ROOT / "samconfig.toml").read_text()
    for line in (line for line in text.splitlines() if line.startswith("parameter_overrides")):
        overrides = settings.parse_parameter_overrides(tomllib.loads(line)["parameter_overrides"])
        assert set(overrides) <= decided, f"{sorted(set(overrides) - decided)} belong to template.yaml's defaults"


def test_the_stacks_prefixes_and_keys_default_to_samconfigs_overrides(monkeypatch):
    """What `sam deploy` passed (samconfig.toml's parameter_overrides) is where the stack reads: stage and
    start-executions use its DatasetPrefix, deploy captures under its DataCapturePrefix, upload-baseline puts the
    baseline at its DriftBaselineKey."""
    from data_prep.cli import cli as data_prep_cli
    from data_prep.training.sagemaker_deploy import data_capture_config
    from monitoring.cli import cli as monitoring_cli
    from workflow.cli import cli as workflow_cli

    deployed = {**settings.template_parameter_defaults(), "DatasetPrefix": "team/images",
                "DataCapturePrefix": "capture/prod", "DriftBaselineKey": "prod/baseline.json"}
    monkeypatch.setattr(settings, "deployed_parameters", lambda: deployed)

    def default(group, *path: str, option: str):
        command = group
        for name in path:
            command = command.commands[name]
        (param,) = [p for p in command.params if p.name == option]
        return param.default() if callable(param.default) else param.default

    assert default(data_prep_cli, "stage", option="prefix") == "team/images"
    assert default(workflow_cli, "start-executions", option="prefix") == "team/images"
    assert default(data_prep_cli, "train", "sagemaker", option="prefix") == "team/images"  # reads what stage wrote
    assert default(monitoring_cli, "upload-baseline", option="key") == "prod/baseline.json"
    assert data_capture_config("b")["DestinationS3Uri"] == "s3://b/capture/prod"
    # the offline stack is deployed from the template alone: it stages where its own roles let serialize-image read
    template_prefix = settings.template_parameter_defaults()["DatasetPrefix"]
    assert template_prefix != "team/images"
    assert settings.staged_dataset_key("test/a.png") == f"{template_prefix}/test/a.png"
