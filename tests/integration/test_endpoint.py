"""The local endpoint over real HTTP: container contract, runtime API via boto3, errors, data capture."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import boto3
import pytest
import requests
from botocore.config import Config
from PIL import Image

from common import settings
from common.servers import BackgroundServer
from data_prep.serving.app import EndpointConfig, create_app
from data_prep.serving.capture import DataCapture
from data_prep.serving.predictor import Predictor
from data_prep.serving.server import start_endpoint
from monitoring.capture import read_capture
from testkit.images import bomb_png, png_bytes
from tests.support import HANG_GUARD_S, wait_until

ENDPOINT = settings.endpoint_name()
CLASS_COUNT = len(settings.class_names())  # the tiny model is trained on the template's ClassNames


def runtime(url: str):
    return boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=url,
                        config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture(scope="module")
def model_endpoint(tiny_model, tmp_path_factory):
    capture_dir = tmp_path_factory.mktemp("capture")
    server, capture = start_endpoint(tiny_model, capture_destination=str(capture_dir))
    yield server.url, capture, capture_dir
    server.stop()
    capture.close()


@pytest.fixture(scope="module")
def runtime_client(model_endpoint):
    return runtime(model_endpoint[0])


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (50, 40), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_ping_is_200_with_an_empty_body(model_endpoint):
    response = requests.get(f"{model_endpoint[0]}/ping", timeout=HANG_GUARD_S)
    assert (response.status_code, response.content) == (200, b"")


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
        f"{model_endpoint[0]}/invocations", data=body, headers={"Content-Type": content_type}, timeout=HANG_GUARD_S
    )
    assert response.status_code == 200
    probabilities = response.json()
    assert len(probabilities) == CLASS_COUNT and abs(sum(probabilities) - 1) < 1e-4


def test_boto3_runtime_round_trip_names_the_variant(runtime_client):
    response = runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png_bytes())
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert len(json.loads(response["Body"].read())) == CLASS_COUNT


@pytest.mark.parametrize("body,message", [
    (b"garbage", "unable to decode the payload as an image: the 7 bytes are not a recognised image format"),
    (b"", "unable to decode the payload as an image: the 0 bytes are not a recognised image format"),
    (png_bytes(64, 64)[:200], "unable to decode the payload as an image: the PNG image could not be decoded: "
                              "image file is truncated"),
])
def test_an_undecodable_image_is_a_400_that_names_the_problem(model_endpoint, runtime_client, body, message):
    container = requests.post(
        f"{model_endpoint[0]}/invocations", data=body, headers={"Content-Type": "image/png"}, timeout=HANG_GUARD_S
    )
    assert (container.status_code, container.json()) == (400, {"message": message})
    with pytest.raises(runtime_client.exceptions.ModelError) as raised:
        runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=body)
    error = raised.value.response
    assert (error["OriginalStatusCode"], error["OriginalMessage"]) == (400, message)
    assert f'Received client error (400) from primary with message "{message}"' in error["Error"]["Message"]
    assert "object at 0x" not in error["Error"]["Message"]
    assert runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png_bytes())[
        "Body"
    ].read()


def test_an_image_bomb_is_a_413_model_error_never_a_500(model_endpoint, runtime_client):
    bomb = bomb_png()
    assert len(bomb) < 100_000
    container = requests.post(f"{model_endpoint[0]}/invocations", data=bomb, headers={"Content-Type": "image/png"},
                              timeout=HANG_GUARD_S)
    assert container.status_code == 413
    assert container.json()["message"].startswith("the image is too large to classify: image is far too large")
    with pytest.raises(runtime_client.exceptions.ModelError) as raised:
        runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=bomb)
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 413 and "the limit is 40000000" in error["OriginalMessage"]


def test_unsupported_content_type_is_415(model_endpoint, runtime_client):
    response = requests.post(
        f"{model_endpoint[0]}/invocations", data=b"1,2,3", headers={"Content-Type": "text/csv"}, timeout=HANG_GUARD_S
    )
    assert response.status_code == 415
    with pytest.raises(runtime_client.exceptions.ModelError) as raised:
        runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=b"1,2,3")
    assert raised.value.response["OriginalStatusCode"] == 415


def test_oversize_body_is_refused(model_endpoint, runtime_client):
    response = requests.post(
        f"{model_endpoint[0]}/invocations",
        data=b"\0" * (6 * 1024 * 1024 + 1),
        headers={"Content-Type": "image/png"},
        timeout=HANG_GUARD_S,
    )
    assert response.status_code == 413
    with pytest.raises(runtime_client.exceptions.ValidationError, match="InvokeEndpoint accepts at most 6291456"):
        runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=b"\0" * (6291456 + 1))


def test_a_chunked_body_is_abandoned_once_past_the_limit(model_endpoint):
    """No Content-Length: the endpoint stops at 6 MB instead of buffering the whole upload (the memory it
    keeps is measured on a real server process in test_serve_process.py)."""

    def chunks():
        for _ in range(50):
            yield b"\0" * (1024 * 1024)

    response = requests.post(f"{model_endpoint[0]}/invocations", data=chunks(),
                             headers={"Content-Type": "image/png"}, timeout=HANG_GUARD_S)
    assert response.status_code == 413
    assert response.json() == {"message": "the request body exceeds 6291456 bytes, InvokeEndpoint's limit"}


def test_the_endpoint_answers_only_its_name(runtime_client):
    with pytest.raises(runtime_client.exceptions.ValidationError,
                       match="Endpoint other of account 123456789012 not found."):
        runtime_client.invoke_endpoint(EndpointName="other", ContentType="image/png", Body=png_bytes())


def test_an_unknown_target_variant_is_a_validation_error(runtime_client):
    ok = runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png_bytes(),
                                        TargetVariant="AllTraffic")
    assert ok["InvokedProductionVariant"] == "AllTraffic"
    with pytest.raises(runtime_client.exceptions.ValidationError,
                       match=f"Variant blue of endpoint {ENDPOINT} of account 123456789012 not found. "
                             "Its variants: AllTraffic."):
        runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png_bytes(),
                                       TargetVariant="blue")


def test_inference_id_is_captured_as_sagemaker_writes_it(model_endpoint, runtime_client):
    _, capture, capture_dir = model_endpoint
    runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png_bytes(seed=9),
                                   InferenceId="order-1234")
    assert capture.flush(HANG_GUARD_S)
    records = [json.loads(line) for path in capture_dir.rglob("*.jsonl") for line in path.read_text().splitlines()]
    tagged = [r for r in records if r["eventMetadata"].get("inferenceId") == "order-1234"]
    assert len(tagged) == 1
    assert list(tagged[0]["eventMetadata"]) == ["eventId", "inferenceId", "inferenceTime"]
    assert base64.b64decode(tagged[0]["captureData"]["endpointInput"]["data"]) == png_bytes(seed=9)
    with pytest.raises(runtime_client.exceptions.ValidationError, match="Member must have length less than or equal"):
        runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png_bytes(),
                                       InferenceId="x" * 65)


def test_capture_health_is_served(model_endpoint):
    response = requests.get(f"{model_endpoint[0]}/capture-health", timeout=HANG_GUARD_S)
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["destination"] == str(model_endpoint[2])
    assert health["dropped_records"] == 0 and health["consecutive_failures"] == 0


class Header:
    """What a model's `open` returns: the image's size, read from its header."""

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)


class SlowModel:
    """A model whose decode takes `seconds` (Pillow and ONNX Runtime release the GIL, as sleep does), for an
    image whose header says 4000x3000: a phone photo."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def open(self, body: bytes, content_type: str) -> Header:
        return Header(4000, 3000)

    def predict_image(self, image: Header) -> list[float]:
        time.sleep(self.seconds)
        return [0.5, 0.5]


class HeldModel:
    """A model whose decode is held until the test releases it: "while a decode runs" is then an event, not a
    duration. Around a real model, the real decode runs first (its image was routed by its real header)."""

    def __init__(self, model=None) -> None:
        self.model = model
        self.decoding = threading.Semaphore(0)  # released once per decode in progress
        self.release = threading.Event()

    def open(self, body: bytes, content_type: str):
        return self.model.open(body, content_type) if self.model else Header(4000, 3000)

    def predict_image(self, image) -> list[float]:
        answer = self.model.predict_image(image) if self.model else [0.5, 0.5]
        self.decoding.release()
        assert self.release.wait(HANG_GUARD_S)
        return answer


class BrokenModel:
    def open(self, body: bytes, content_type: str) -> Header:
        return Header(32, 32)

    def predict_image(self, image: Header) -> list[float]:
        raise RuntimeError("a bug in the model server")


def pings_while_decodes_are_held(url: str, model: HeldModel, bodies: list[bytes]) -> list[int]:
    """POST each body; once every decode is in progress (held), ping 5 times; then release the decodes. A ping that
    waited for a decode would wait until released: it times out instead (requests' timeout)."""
    results: list[int] = []
    posts = [threading.Thread(target=lambda body=body: results.append(requests.post(
        f"{url}/invocations", data=body, headers={"Content-Type": "image/png"}, timeout=HANG_GUARD_S).status_code))
        for body in bodies]
    for post in posts:
        post.start()
    try:
        for _ in bodies:
            assert model.decoding.acquire(timeout=HANG_GUARD_S)
        pings = [requests.get(f"{url}/ping", timeout=HANG_GUARD_S).status_code for _ in range(5)]
    finally:
        model.release.set()
        for post in posts:
            post.join()
    assert results == [200] * len(bodies)
    return pings


def test_ping_answers_while_every_decode_worker_is_busy():
    model = HeldModel()
    with BackgroundServer(create_app(model, config=EndpointConfig(endpoint_name="held"))) as server:
        assert pings_while_decodes_are_held(server.url, model, [b"x", b"x"]) == [200] * 5  # both workers busy


def test_ping_answers_while_a_real_36_megapixel_image_decodes(tiny_model):
    buffer = io.BytesIO()
    Image.new("1", (6000, 6000), 1).save(buffer, format="PNG")  # 4 KB that take most of a second to decode
    model = HeldModel(Predictor(tiny_model))  # the real header decides where the real decode runs
    with BackgroundServer(create_app(model, config=EndpointConfig(endpoint_name="held"))) as server:
        assert pings_while_decodes_are_held(server.url, model, [buffer.getvalue()]) == [200] * 5


def test_a_model_server_bug_is_a_500_model_error_not_a_bare_500(tmp_path):
    app = create_app(BrokenModel(), config=EndpointConfig(endpoint_name="broken"))
    with BackgroundServer(app) as server:
        client = runtime(server.url)
        with pytest.raises(client.exceptions.ModelError) as raised:
            client.invoke_endpoint(EndpointName="broken", ContentType="image/png", Body=png_bytes())
        container = requests.post(f"{server.url}/invocations", data=b"x", headers={"Content-Type": "image/png"},
                                  timeout=HANG_GUARD_S)
    error = raised.value.response
    assert error["OriginalStatusCode"] == 500
    assert "Received server error (500) from primary" in error["Error"]["Message"]
    assert container.status_code == 500 and "RuntimeError" in container.json()["message"]


def test_capture_health_is_503_while_capture_cannot_write(tmp_path):
    folder = tmp_path / "capture"
    capture = DataCapture(str(folder), "scones", max_delay_seconds=0.01, retry_initial_seconds=0.01,
                          retry_max_seconds=0.05)
    app = create_app(SlowModel(0), capture, EndpointConfig(endpoint_name="scones"))
    with BackgroundServer(app) as server:
        folder.rmdir()
        folder.write_text("blocked")
        assert requests.post(f"{server.url}/invocations", data=b"x", headers={"Content-Type": "image/png"},
                             timeout=HANG_GUARD_S).status_code == 200  # inference never waits on capture
        wait_until(lambda: requests.get(f"{server.url}/capture-health", timeout=HANG_GUARD_S).status_code == 503,
                   "capture-health to say 503")
        health = requests.get(f"{server.url}/capture-health", timeout=HANG_GUARD_S)
        assert health.json()["status"] == "failing" and health.json()["buffered_records"] == 1
        folder.unlink()
        assert capture.flush(HANG_GUARD_S)
        assert requests.get(f"{server.url}/capture-health", timeout=HANG_GUARD_S).status_code == 200
    capture.close()
    assert len(list(folder.rglob("*.jsonl"))) == 1


def test_concurrent_requests_are_all_captured_in_sagemaker_format(tiny_model, tmp_path):
    server, capture = start_endpoint(tiny_model, capture_destination=str(tmp_path))
    image = png_bytes(seed=5)

    def hammer() -> None:
        with requests.Session() as session:
            for _ in range(10):
                session.post(f"{server.url}/invocations", data=image, headers={"Content-Type": "image/png"},
                             timeout=HANG_GUARD_S)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.stop()
    capture.close()

    files = sorted(tmp_path.rglob("*.jsonl"))
    assert files and all(f.relative_to(tmp_path).parts[:2] == (ENDPOINT, "AllTraffic") for f in files)
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
    assert len(json.loads(response["data"])) == CLASS_COUNT
    assert base64.b64decode(request["data"]) == image
    parsed = read_capture(tmp_path)  # the SageMaker capture reader monitoring uses
    assert len(parsed.records) == 80 and parsed.malformed == []
    assert all(r.input == image and len(r.probabilities) == CLASS_COUNT for r in parsed.records)


def test_sampling_zero_captures_nothing(tiny_model, tmp_path):
    server, capture = start_endpoint(tiny_model, capture_destination=str(tmp_path), sampling_percentage=0)
    requests.post(f"{server.url}/invocations", data=png_bytes(), headers={"Content-Type": "image/png"},
                  timeout=HANG_GUARD_S)
    server.stop()
    capture.close()
    assert list(tmp_path.rglob("*.jsonl")) == []
