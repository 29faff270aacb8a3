"""The packages `sam build` writes, run as Lambda's python3.12 runtime runs them, on the events in events/.

Each function imports from its own folder, its layers' python/ folders and boto3/botocore only (see
tools/lambda_sandbox.py): a requirement missing from a requirements.txt, the ImagingLayer not
attached, or code that needs the dev venv fails here. CI runs `make build` before `make test`; without
a build the test is skipped and says so, and a build older than the sources is rebuilt first.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from PIL import Image

from common.artefacts import write_baseline
from common.servers import BackgroundServer
from common.settings import OFFLINE_REGION, REPO_ROOT
from monitoring.baseline import build_baseline
from testkit.capture import CLASSES, images, probabilities, write_capture
from testkit.images import png_bytes
from tests.support import load_event
from tools import lambda_sandbox
from workflow.offline.runtime import moto_http_server
from workflow.offline.stub_endpoint import Answer, ScriptedEndpoint

FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true"}


@pytest.fixture(scope="module")
def sandbox() -> tuple[Path, Path, dict[str, lambda_sandbox.BuiltFunction]]:
    build = lambda_sandbox.BUILD_DIR
    if not (build / "template.yaml").exists():
        pytest.skip(f"no {build.relative_to(REPO_ROOT)}/template.yaml: run `make build` first (CI does)")
    python = lambda_sandbox.find_python312()
    assert python is not None, "sam build ran, so python3.12 was on PATH; it is not now"
    if lambda_sandbox.stale_sources(build):
        sam = REPO_ROOT / ".venv-sam" / "bin" / "sam"
        assert sam.exists(), f"{build} is older than the sources and there is no {sam} to rebuild it: `make build`"
        env = {**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
        subprocess.run([str(sam), "build"], cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=300)
    return python, lambda_sandbox.runtime_packages(python), lambda_sandbox.built_functions(build)


def run(sandbox, name: str, events: list, **environment: str) -> lambda_sandbox.SandboxReport:
    python, runtime_dir, functions = sandbox
    report = lambda_sandbox.invoke_built(functions[name], events, python=python, runtime_dir=runtime_dir,
                                         environment={**FAKE_AWS, **environment})
    assert report.init_error is None, report.init_error
    assert report.python == (3, 12)
    allowed = [str(p) for p in [*functions[name].path, runtime_dir, Path(python).resolve().parent.parent]]
    strays = [m for m in report.modules if not m.startswith(tuple(allowed))]
    assert strays == [], f"{name} imported from outside its package, layers and the runtime: {strays[:5]}"
    return report


def test_every_function_is_built_with_its_layers(sandbox):
    _, _, functions = sandbox
    assert {name: [p.parent.name for p in f.layer_dirs] for name, f in functions.items()} == {
        "SerializeImageFunction": ["ImagingLayer"], "ClassifyImageFunction": [],
        "FilterLowConfidenceFunction": ["ModelQualityLayer"], "CheckDriftFunction": ["ImagingLayer", "DriftCheckLayer"],
        "CheckQualityFunction": ["ModelQualityLayer"], "SummarizeBatchFunction": []}


def test_built_serialize_image_reads_s3_and_names_its_errors(sandbox):
    original = png_bytes(seed=5)
    with moto_http_server() as url:
        s3 = boto3.client("s3", region_name=OFFLINE_REGION, endpoint_url=url, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        event = load_event("serialize_image.json")
        s3.create_bucket(Bucket=event["s3_bucket"])
        s3.put_object(Bucket=event["s3_bucket"], Key=event["s3_key"], Body=original)
        s3.put_object(Bucket=event["s3_bucket"], Key="test/red flower.png", Body=original)
        s3.put_object(Bucket=event["s3_bucket"], Key="test/notes.png", Body=b"not an image at all")
        report = run(sandbox, "SerializeImageFunction", [
            event, load_event("execution_input.json"),
            {**event, "s3_key": "test/red+flower.png"},  # URL-encoded, as S3 notifications send keys
            {**event, "s3_key": "test/missing.png"}, {**event, "s3_key": "test/notes.png"}],
            AWS_ENDPOINT_URL_S3=url)
    first, second, encoded, missing, not_image = report.results
    body = first["result"]["body"]
    assert (body["s3_bucket"], body["s3_key"], body["inferences"]) == (event["s3_bucket"], event["s3_key"], [])
    sent = Image.open(io.BytesIO(base64.b64decode(body["image_data"])))
    assert (sent.mode, sent.size) == ("RGB", (32, 32))
    assert sent.tobytes() == Image.open(io.BytesIO(original)).convert("RGB").tobytes()
    assert second == first
    assert encoded["result"]["body"]["s3_key"] == "test/red flower.png"
    assert missing["errorType"] == "ImageNotFoundError"
    assert not_image["errorType"] == "NotAnImageError"


def test_built_classify_image_calls_the_endpoint_and_names_its_errors(sandbox):
    endpoint = ScriptedEndpoint()
    endpoint.enqueue([Answer.probabilities(0.97, 0.03), Answer.error(424, "ModelError", "bad image"),
                      Answer.throttled()])
    event = load_event("classify_image.json")
    with BackgroundServer(endpoint.app(), name="scripted-endpoint") as server:
        report = run(sandbox, "ClassifyImageFunction", [event, event, event],
                     AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=server.url)
    answered, refused, throttled = report.results
    assert answered["result"]["body"] == {
        "s3_bucket": event["body"]["s3_bucket"], "s3_key": event["body"]["s3_key"],
        "content_sha256": event["body"]["content_sha256"], "inferences": [0.97, 0.03],
        "prediction": {"label": "bicycle", "confidence": 0.97}}
    assert refused["errorType"] == "ModelInvocationError"
    assert throttled["errorType"] == "EndpointUnavailableError"
    assert endpoint.invocations[0].endpoint_name == "scones-image-classifier"
    assert endpoint.invocations[0].body == base64.b64decode(event["body"]["image_data"])


def test_built_filter_passes_confident_items_and_names_low_confidence(sandbox):
    passing, low = load_event("filter_low_confidence_pass.json"), load_event("filter_low_confidence_low.json")
    report = run(sandbox, "FilterLowConfidenceFunction", [passing, low])
    assert report.results[0] == {"result": {**passing, "audit": {"sampled": False, "rate": 0.02}}}
    assert report.results[1]["errorType"] == "LowConfidenceError"
    assert '"LowConfidence"' in report.stdout  # the EMF metrics, on stdout as in Lambda


def test_built_check_drift_reads_the_window_and_publishes_its_verdict(sandbox, tmp_path):
    _, _, functions = sandbox
    environment = functions["CheckDriftFunction"].environment
    folder = tmp_path / "capture"
    write_capture(folder, images(60, 5), probabilities(60, 5), per_file=30,
                  start=datetime.now(UTC) - timedelta(minutes=3))
    baseline = write_baseline(tmp_path, build_baseline(images(400, 10), probabilities(200, 10), CLASSES))
    with moto_http_server() as url:
        clients = {name: boto3.client(name, region_name=OFFLINE_REGION, endpoint_url=url, aws_access_key_id="testing",
                                      aws_secret_access_key="testing") for name in ("s3", "cloudwatch")}
        bucket = environment["CAPTURE_BUCKET"]
        clients["s3"].create_bucket(Bucket=bucket)
        clients["s3"].put_object(Bucket=bucket, Key=environment["BASELINE_KEY"], Body=baseline.read_bytes())
        prefix = environment["CAPTURE_PREFIX"].rsplit("/", 1)[0]  # <DataCapturePrefix>; the endpoint folder follows
        for path in folder.rglob("*.jsonl"):
            clients["s3"].put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}",
                                     Body=path.read_bytes())
        report = run(sandbox, "CheckDriftFunction", [load_event("check_drift.json")], AWS_ENDPOINT_URL=url)
        published = clients["cloudwatch"].list_metrics(Namespace=environment["METRICS_NAMESPACE"])["Metrics"]
    (outcome,) = report.results
    assert (outcome["result"]["verdict"], outcome["result"]["samples"]) == ("no drift", 60)
    assert {m["MetricName"] for m in published} >= {"DriftedFeatures", "Samples", "PSI", "PValue"}


def test_built_check_quality_judges_the_audits_and_publishes_the_alarms_metric(sandbox, tmp_path):
    from tests.unit.test_model_quality import Mirror

    _, _, functions = sandbox
    environment = functions["CheckQualityFunction"].environment
    mirror = Mirror(tmp_path / "bucket", day=f"{datetime.now(UTC) - timedelta(days=1):%Y-%m-%d}")
    for index in range(6):
        mirror.decide(f"img-{index}", "bicycle", audit=True)
        mirror.label(f"img-{index}", CLASSES[index % 2])
    with moto_http_server() as url:
        clients = {name: boto3.client(name, region_name=OFFLINE_REGION, endpoint_url=url, aws_access_key_id="testing",
                                      aws_secret_access_key="testing") for name in ("s3", "cloudwatch")}
        bucket = environment["DATA_BUCKET"]
        clients["s3"].create_bucket(Bucket=bucket)
        for path in mirror.root.rglob("*"):
            if path.is_file():
                clients["s3"].put_object(Bucket=bucket, Key=path.relative_to(mirror.root).as_posix(),
                                         Body=path.read_bytes())
        report = run(sandbox, "CheckQualityFunction", [load_event("check_quality.json")], AWS_ENDPOINT_URL=url)
        published = clients["cloudwatch"].list_metrics(Namespace=environment["METRICS_NAMESPACE"])["Metrics"]
    (outcome,) = report.results
    assert (outcome["result"]["verdict"], outcome["result"]["audited"]) == ("degraded", 6)
    assert {m["MetricName"] for m in published} >= {"PrecisionUpperBound", "Audited", "OldestUnlabelledAuditHours"}


def test_each_package_comes_from_where_lambda_puts_it(sandbox):
    _, runtime_dir, functions = sandbox
    serialize = functions["SerializeImageFunction"]
    report = run(sandbox, "SerializeImageFunction", [])

    def origin(fragment: str) -> str:
        return next(m for m in report.modules if m.endswith(fragment))

    assert origin("/app.py") == str(serialize.code_dir / "app.py")
    assert origin("/aws_lambda_powertools/__init__.py").startswith(f"{serialize.code_dir}/")
    assert origin("/imaging/preprocess.py").startswith(f"{serialize.layer_dirs[0]}/")
    assert origin("/PIL/Image.py").startswith(f"{serialize.layer_dirs[0]}/")
    assert origin("/botocore/client.py").startswith(f"{runtime_dir}/")


def test_built_summarize_batch_reads_the_map_results_and_writes_the_summary(sandbox):
    event = load_event("summarize_batch.json")
    run_prefix = event["results"]["Key"].rsplit("/", 1)[0]
    succeeded = [{"Status": "SUCCEEDED", "Input": '{"key": "batch/a.png"}',
                  "Output": '{"key": "batch/a.png", "outcome": "classified", "label": "bicycle"}'},
                 {"Status": "SUCCEEDED", "Input": '{"key": "batch/b.png"}',
                  "Output": '{"key": "batch/b.png", "outcome": "review"}'}]
    failed = [{"Status": "FAILED", "Input": '{"key": "batch/c.png"}', "Error": "States.Timeout"}]
    manifest = {"ResultFiles": {"SUCCEEDED": [{"Key": f"{run_prefix}/SUCCEEDED_0.json"}],
                                "FAILED": [{"Key": f"{run_prefix}/FAILED_0.json"}], "PENDING": []}}
    with moto_http_server() as url:
        s3 = boto3.client("s3", region_name=OFFLINE_REGION, endpoint_url=url, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        s3.create_bucket(Bucket=event["bucket"])
        for key, body in ((event["results"]["Key"], manifest), (f"{run_prefix}/SUCCEEDED_0.json", succeeded),
                          (f"{run_prefix}/FAILED_0.json", failed)):
            s3.put_object(Bucket=event["bucket"], Key=key, Body=json.dumps(body).encode())
        report = run(sandbox, "SummarizeBatchFunction", [event, {"bucket": "only"}], AWS_ENDPOINT_URL_S3=url)
        summary = json.loads(s3.get_object(Bucket=event["bucket"], Key=event["summary_key"])["Body"].read())
    answered, invalid = report.results
    assert {k: answered["result"][k] for k in ("classified", "review", "failed", "objects")} == {
        "classified": 1, "review": 1, "failed": 1, "objects": 3}
    assert summary["failed"]["keys"] == {"batch/c.png": "States.Timeout"}
    assert summary["classified"]["keys"] == ["batch/a.png"] and summary["review"]["keys"] == ["batch/b.png"]
    assert invalid["errorType"] == "InvalidEventError"
