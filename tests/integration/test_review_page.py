"""The review page over HTTP and in headless Chromium: the JSON API's contract, two reviewers racing, a restart,
and a person labelling three images with the keyboard."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from review.server import start_review
from testkit.browser import has_horizontal_overflow, page_errors
from testkit.review import CLASSES, queued_images, write_review_folder
from tests.support import HANG_GUARD_S


def call(url: str, method: str, path: str, body: dict | None = None) -> tuple[int, object, dict[str, str]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HANG_GUARD_S)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = connection.getresponse()
        raw = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        parsed = json.loads(raw) if headers.get("content-type", "").startswith("application/json") else raw
        return response.status, parsed, headers
    finally:
        connection.close()


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_review_folder(tmp_path / "bucket", queued_images(5))


@pytest.fixture
def server(folder):
    running, _ = start_review(str(folder), CLASSES)
    yield running
    running.stop()


def labels_in(folder: Path) -> dict[str, dict]:
    """The labels written, by the item they were given on (a label's file is named by its image's content hash)."""
    lines = [json.loads(path.read_text()) for path in sorted((folder / "labels").glob("*.jsonl"))]
    return {line["review"]["id"]: line for line in lines}


def test_the_queue_lists_each_item_as_the_contract_says(server):
    status, body, _ = call(server.url, "GET", "/api/queue")
    assert status == 200
    assert body["left"] == 5 and body["labelled"] == 0 and body["classes"] == CLASSES
    assert body["items"][0] == {
        "id": "exec-000-00000", "s3_key": "test/photo_000_00000.png", "audit": False,
        "prediction": {"label": "bicycle", "confidence": 0.5}, "inferences": [0.5, 0.5],
        "recorded_at": "2026-11-24T10:00:00.000Z",
    }
    assert [item["id"] for item in body["items"]] == [f"exec-000-{i:05d}" for i in range(5)]


def test_the_image_is_served_as_stored_with_its_type_from_its_bytes(server):
    status, body, headers = call(server.url, "GET", "/api/items/exec-000-00003/image")
    assert (status, headers["content-type"]) == (200, "image/png")
    assert body == queued_images(5)[3].image


def test_a_label_is_a_ground_truth_line_and_the_item_leaves_the_queue(server, folder):
    status, body, _ = call(server.url, "POST", "/api/items/exec-000-00002/label", {"label": "motorcycle"})
    assert (status, body) == (201, {"id": "exec-000-00002", "label": "motorcycle",
                                    "key": f"labels/{queued_images(5)[2].content_sha256}.jsonl"})
    line = labels_in(folder)["exec-000-00002"]
    assert line["source-ref"] == "s3://scones-offline/test/photo_000_00002.png"
    assert line["vehicle-class"] == 1
    metadata = line["vehicle-class-metadata"]
    assert {k: v for k, v in metadata.items() if k != "creation-date"} == {
        "class-name": "motorcycle", "confidence": 1.0, "human-annotated": "yes",
        "type": "groundtruth/image-classification", "job-name": "labeling-job/scones-review"}
    _, queue, _ = call(server.url, "GET", "/api/queue")
    assert "exec-000-00002" not in [item["id"] for item in queue["items"]]
    assert (queue["left"], queue["labelled"]) == (4, 1)

    status, body, _ = call(server.url, "POST", "/api/items/exec-000-00002/label", {"label": "bicycle"})
    assert status == 409
    assert body == {"error": "AlreadyLabelledError",
                    "message": "exec-000-00002 was already labelled as motorcycle by another reviewer"}


@pytest.mark.parametrize(("path", "body", "status", "error", "message"), [
    ("/api/items/no-such-item/label", {"label": "bicycle"}, 404, "UnknownItemError",
     "no review item 'no-such-item': there is no review/no-such-item.json in "),
    ("/api/items/exec-000-00000/label", {"label": "tractor"}, 400, "UnknownClassError",
     "'tractor' is not a class; the classes are bicycle, motorcycle"),
    ("/api/items/exec-000-00000/label", {"labels": "bicycle"}, 400, "BadRequestError",
     'give {"label": "<class name>"} or {"skip": true}; classes: bicycle, motorcycle'),
    ("/api/items/exec-000-00000/label", [1], 400, "BadRequestError",
     'the body must be a JSON object, e.g. {"label": "bicycle"} or {"skip": true}'),
])
def test_unknown_items_classes_and_bodies_are_clear_4xx(server, folder, path, body, status, error, message):
    answered, answer, _ = call(server.url, "POST", path, body)
    assert answered == status
    assert answer["error"] == error and answer["message"].startswith(message)
    assert not (folder / "labels").exists()


def test_an_unknown_image_is_404(server):
    status, body, _ = call(server.url, "GET", "/api/items/nope/image")
    assert status == 404 and body["error"] == "UnknownItemError"


def test_two_reviewers_on_two_servers_racing_on_one_item_write_exactly_one_label(folder):
    servers = [start_review(str(folder), CLASSES)[0] for _ in range(2)]
    try:
        for index in range(5):
            identifier = f"exec-000-{index:05d}"
            barrier = threading.Barrier(2)
            answers: list[int] = []

            def post(url: str, label: str, item: str = identifier) -> None:
                barrier.wait()
                answers.append(call(url, "POST", f"/api/items/{item}/label", {"label": label})[0])

            threads = [threading.Thread(target=post, args=(s.url, c)) for s, c in zip(servers, CLASSES, strict=True)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(answers) == [201, 409]
    finally:
        for running in servers:
            running.stop()
    assert len(labels_in(folder)) == 5
    assert not [path for path in (folder / "labels").iterdir() if path.name.startswith(".")]


def test_labels_survive_a_restart(folder):
    first, _ = start_review(str(folder), CLASSES)
    assert call(first.url, "POST", "/api/items/exec-000-00004/label", {"label": "bicycle"})[0] == 201
    first.stop()
    second, _ = start_review(str(folder), CLASSES)
    try:
        _, queue, _ = call(second.url, "GET", "/api/queue")
        assert (queue["left"], queue["labelled"]) == (4, 1)
        assert "exec-000-00004" not in [item["id"] for item in queue["items"]]
    finally:
        second.stop()


def test_the_command_refuses_a_source_that_is_not_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    done = subprocess.run([sys.executable, "-m", "review", "serve", "--source", str(tmp_path / "file"), "--port", "0"],
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"ReviewSourceError: {tmp_path / 'file'} is not a folder")


def test_a_reviewer_labels_three_images_with_the_keyboard(browser, server, folder):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = page_errors(page)
    page.goto(server.url + "/")
    page.wait_for_function("document.getElementById('progress').textContent === '5 of 5 left'")
    page.wait_for_function("document.getElementById('image').complete && "
                           "document.getElementById('image').naturalWidth === 32")
    image = page.locator("#image")
    assert image.evaluate("e => getComputedStyle(e).imageRendering") == "pixelated"
    assert image.bounding_box()["width"] >= 256  # a 32x32 image shown large
    assert page.text_content("#guess") == "bicycle (confidence 0.500)"
    assert page.text_content("#key") == "test/photo_000_00000.png"
    assert [b.text_content() for b in page.locator("button.class").all()] == ["1Bbicycle", "2Mmotorcycle"]

    for key, left, shown in (("1", 4, "test/photo_000_00001.png"), ("m", 3, "test/photo_000_00002.png"),
                             ("2", 2, "test/photo_000_00003.png")):
        page.keyboard.press(key)
        page.wait_for_function(f"document.getElementById('progress').textContent === '{left} of 5 left'")
        page.wait_for_function(f"document.getElementById('key').textContent === '{shown}'")

    assert {key: (line["vehicle-class"], line["vehicle-class-metadata"]["class-name"])
            for key, line in labels_in(folder).items()} == {
        "exec-000-00000": (0, "bicycle"), "exec-000-00001": (1, "motorcycle"), "exec-000-00002": (1, "motorcycle")}
    _, queue, _ = call(server.url, "GET", "/api/queue")  # the page holds a claim on 00003: others see it last
    assert [item["id"] for item in queue["items"]] == ["exec-000-00004", "exec-000-00003"]

    page.keyboard.press("u")  # undo the last label: the image comes back
    page.wait_for_function("document.getElementById('progress').textContent === '3 of 5 left'")
    page.wait_for_function("document.getElementById('key').textContent === 'test/photo_000_00002.png'")
    assert sorted(labels_in(folder)) == ["exec-000-00000", "exec-000-00001"]
    page.keyboard.press("s")  # skip: the next image, the skipped one at the back
    page.wait_for_function("document.getElementById('key').textContent === 'test/photo_000_00003.png'")
    assert page.text_content("#progress") == "3 of 5 left"
    assert not has_horizontal_overflow(page)
    page.set_viewport_size({"width": 420, "height": 800})
    assert not has_horizontal_overflow(page)
    assert errors == []
    page.close()


def test_a_second_reviewer_is_shown_a_different_image(browser, server):
    first = browser.new_page()
    second = browser.new_page()
    first.goto(server.url + "/")
    first.wait_for_function("document.getElementById('key').textContent === 'test/photo_000_00000.png'")
    second.goto(server.url + "/")
    second.wait_for_function("document.getElementById('key').textContent === 'test/photo_000_00001.png'")
    first.close()
    second.close()


def test_an_audit_is_blind_in_the_api_and_on_the_page_and_its_label_says_so(browser, tmp_path):
    folder = write_review_folder(tmp_path / "bucket", queued_images(3, audits=frozenset({0})))
    running, _ = start_review(str(folder), CLASSES)
    try:
        _, queue, _ = call(running.url, "GET", "/api/queue")
        assert queue["items"][0] == {"id": "exec-000-00000", "s3_key": "test/photo_000_00000.png", "audit": True,
                                     "recorded_at": "2026-11-24T10:00:00.000Z"}
        assert [item["audit"] for item in queue["items"]] == [True, False, False]  # mixed in, by time
        page = browser.new_page()
        errors = page_errors(page)
        page.goto(running.url + "/")
        page.wait_for_function("document.getElementById('key').textContent === 'test/photo_000_00000.png'")
        assert page.text_content("#guess") == "hidden (a blind audit: your answer checks the model's)"
        page.keyboard.press("2")
        page.wait_for_function("document.getElementById('key').textContent === 'test/photo_000_00001.png'")
        assert page.text_content("#guess") == "motorcycle (confidence 0.648)"
        assert errors == []
        page.close()
    finally:
        running.stop()
    line = labels_in(folder)["exec-000-00000"]
    assert line["vehicle-class-metadata"]["class-name"] == "motorcycle"
    assert line["review"]["audit"] is True and "model-label" not in line["review"]
