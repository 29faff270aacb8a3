"""The local endpoint over real HTTP: container contract, runtime API via boto3, errors, data capture."""

from __future__ import annotations

import io
import json
import threading

import boto3
import pytest
import requests
from botocore.config import Config
from PIL import Image

from data_prep.serving.server import start_endpoint
from monitoring.capture import read_capture
from testkit.images import png_bytes


@pytest.fixture(scope="module")
def model_endpoint(tiny_model, tmp_path_factory):
    capture_dir = tmp_path_factory.mktemp("capture")
    server, capture = start_endpoint(tiny_model, capture_destination=str(capture_dir))
    yield server.url, capture, capture_dir
    server.stop()
    capture.close()


@pytest.fixture(scope="module")
def runtime_client(model_endpoint):
    return boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        endpoint_url=model_endpoint[0],
        config=Config(retries={"total_max_attempts": 1}),
    )


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (50, 40), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_ping(model_endpoint):
    assert requests.get(f"{model_endpoint[0]}/ping", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "content_type,body",
    [
        ("image/png", png_bytes()),
        ("image/jpeg", jpeg_bytes()),
        ("application/x-image", png_bytes(seed=3)),
        ("image/png", png_bytes(64, 64, mode="RGBA")),
    ],
)
def test_invocations_return_one_probability_per_class(model_endpoint, content_type, body):
    response = requests.post(
        f"{model_endpoint[0]}/invocations", data=body, headers={"Content-Type": content_type}, timeout=5
    )
    assert response.status_code == 200
    probabilities = response.json()
    assert len(probabilities) == 2 and abs(sum(probabilities) - 1) < 1e-4


def test_boto3_runtime_round_trip(runtime_client):
    response = runtime_client.invoke_endpoint(EndpointName="any-name", ContentType="image/png", Body=png_bytes())
    assert response["ContentType"] == "application/json"
    assert len(json.loads(response["Body"].read())) == 2


def test_undecodable_image_is_a_model_error_and_the_server_keeps_serving(model_endpoint, runtime_client):
    container = requests.post(
        f"{model_endpoint[0]}/invocations", data=b"garbage", headers={"Content-Type": "image/png"}, timeout=5
    )
    assert container.status_code == 400
    assert container.json()["message"].startswith("unable to decode the payload as an image")
    with pytest.raises(runtime_client.exceptions.ModelError) as raised:
        runtime_client.invoke_endpoint(EndpointName="scones", ContentType="image/png", Body=b"garbage")
    error = raised.value.response
    assert error["OriginalStatusCode"] == 400
    assert "Received client error (400) from primary" in error["Error"]["Message"]
    assert runtime_client.invoke_endpoint(EndpointName="scones", ContentType="image/png", Body=png_bytes())[
        "Body"
    ].read()


def test_unsupported_content_type_is_415(model_endpoint, runtime_client):
    response = requests.post(
        f"{model_endpoint[0]}/invocations", data=b"1,2,3", headers={"Content-Type": "text/csv"}, timeout=5
    )
    assert response.status_code == 415
    with pytest.raises(runtime_client.exceptions.ModelError) as raised:
        runtime_client.invoke_endpoint(EndpointName="scones", ContentType="text/csv", Body=b"1,2,3")
    assert raised.value.response["OriginalStatusCode"] == 415


def test_oversize_body_is_refused(model_endpoint):
    response = requests.post(
        f"{model_endpoint[0]}/invocations",
        data=b"\0" * (6 * 1024 * 1024 + 1),
        headers={"Content-Type": "image/png"},
        timeout=10,
    )
    assert response.status_code == 413


def test_a_named_endpoint_refuses_other_names(tiny_model):
    server, _ = start_endpoint(tiny_model, endpoint_name="scones-image-classifier")
    try:
        client = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=server.url)
        with pytest.raises(client.exceptions.ClientError, match="Endpoint other of account 123456789012 not found"):
            client.invoke_endpoint(EndpointName="other", ContentType="image/png", Body=png_bytes())
    finally:
        server.stop()


def test_concurrent_requests_are_all_captured_in_sagemaker_format(tiny_model, tmp_path):
    server, capture = start_endpoint(tiny_model, capture_destination=str(tmp_path))
    image = png_bytes(seed=5)

    def hammer() -> None:
        with requests.Session() as session:
            for _ in range(10):
                session.post(f"{server.url}/invocations", data=image, headers={"Content-Type": "image/png"}, timeout=5)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.stop()
    capture.close()

    files = sorted(tmp_path.rglob("*.jsonl"))
    assert files and all(f.relative_to(tmp_path).parts[:2] == ("scones-image-classifier", "AllTraffic") for f in files)
    assert all(len(f.relative_to(tmp_path).parts) == 7 for f in files)  # endpoint/variant/yyyy/mm/dd/hh/file
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(records) == 80
    record = records[0]
    assert record["eventVersion"] == "0"
    assert set(record["eventMetadata"]) == {"eventId", "inferenceTime"}
    request, response = record["captureData"]["endpointInput"], record["captureData"]["endpointOutput"]
    assert (request["observedContentType"], request["mode"], request["encoding"]) == ("image/png", "INPUT", "BASE64")
    assert (response["observedContentType"], response["mode"], response["encoding"]) == (
        "application/json",
        "OUTPUT",
        "JSON",
    )
    assert len(json.loads(response["data"])) == 2
    import base64

    assert base64.b64decode(request["data"]) == image
    parsed = read_capture(tmp_path)  # the SageMaker capture reader monitoring uses
    assert len(parsed.records) == 80 and parsed.malformed == []
    assert all(r.input == image and len(r.probabilities) == 2 for r in parsed.records)


def test_sampling_zero_captures_nothing(tiny_model, tmp_path):
    server, capture = start_endpoint(tiny_model, capture_destination=str(tmp_path), sampling_percentage=0)
    requests.post(f"{server.url}/invocations", data=png_bytes(), headers={"Content-Type": "image/png"}, timeout=5)
    server.stop()
    capture.close()
    assert list(tmp_path.rglob("*.jsonl")) == []
