"""The review page against what an attacker's web page can make a reviewer's browser do, in headless Chromium.

A second server on another local port serves the attacker's page (another origin of the same site: what any
local web app, or a page the reviewer visits that targets 127.0.0.1, can be). It tries the simple-request
POST (text/plain), a no-cors fetch, a CORS JSON fetch, and two cross-site forms. A DNS-rebinding page is
served under a name that Chromium resolves to 127.0.0.1 (`--host-resolver-rules`), at the review server's own
port, so that its requests are same-origin in the browser's eyes. Each test checks that the requests really
reached the review server (its refusal log) and that no label was written.
"""

from __future__ import annotations

import json
import logging

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from common.servers import BackgroundServer
from review.security import AccessPolicy
from review.server import start_review
from testkit.browser import chromium_with, page_errors
from testkit.review import CLASSES, queued_images, write_review_folder

REBIND_NAME = "rebind.test"  # .test is reserved (RFC 2606): never a real name

CROSS_ORIGIN_ATTACK = """<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="urlencoded" method="POST" target="sink1" action="{target}/api/items/exec-000-00003/label">
  <input name="label" value="bicycle"></form>
<form id="plain" method="POST" target="sink2" enctype="text/plain"
      action="{target}/api/items/exec-000-00004/label"><input name='{{"label": "bicycle", "pad": "' value='"}}'></form>
<script>
const target = "{target}";
const body = JSON.stringify({{label: "bicycle", reviewer: "attacker"}});
const outcome = (promise) => promise.then((r) => r.type + ":" + r.status, (e) => "blocked");
const loaded = (name) => new Promise((resolve) => document.querySelector(`iframe[name=${{name}}]`).onload = resolve);
window.results = {{}};
(async () => {{
  results.simple = await outcome(fetch(`${{target}}/api/items/exec-000-00000/label`, {{method: "POST", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}}, body}}));
  results.noCorsJson = await outcome(fetch(`${{target}}/api/items/exec-000-00001/label`, {{method: "POST",
    mode: "no-cors", headers: {{"Content-Type": "application/json"}}, body}}));
  results.corsJson = await outcome(fetch(`${{target}}/api/items/exec-000-00002/label`, {{method: "POST",
    headers: {{"Content-Type": "application/json"}}, body}}));
  const forms = [loaded("sink1"), loaded("sink2")];
  document.getElementById("urlencoded").submit();
  document.getElementById("plain").submit();
  await Promise.all(forms);
  window.done = true;
}})();
</script></body></html>"""

REBOUND_ATTACK = """async () => {
  const body = JSON.stringify({label: "motorcycle"});
  const json = {"Content-Type": "application/json"};
  const status = (promise) => promise.then((r) => r.status, () => "blocked");
  return {
    queue: await status(fetch("/api/queue")),
    image: await status(fetch("/api/items/exec-000-00000/image")),
    label: await status(fetch("/api/items/exec-000-00000/label", {method: "POST", headers: json, body})),
    undo: await status(fetch("/api/items/exec-000-00000/label", {method: "DELETE", headers: json})),
  };
}"""


@pytest.fixture
def served(tmp_path):
    """(the review server, its folder) over five queued images, loopback only and no token: the default."""
    folder = write_review_folder(tmp_path / "bucket", queued_images(5))
    running, _ = start_review(str(folder), CLASSES)
    yield running, folder
    running.stop()


def refusals(caplog) -> list[tuple[str, str, str]]:
    """(method, path, error) of each request the review server refused, from its log."""
    return [(record.args[0], record.args[1], record.args[-1]) for record in caplog.records
            if record.name == "review.security" and record.msg.startswith("refused")]


def test_a_page_on_another_local_origin_cannot_write_a_label(browser, served, caplog):
    server, folder = served
    page_html = CROSS_ORIGIN_ATTACK.format(target=server.url)

    async def attack(request):
        return HTMLResponse(page_html)

    with caplog.at_level(logging.WARNING, logger="review.security"), \
            BackgroundServer(Starlette(routes=[Route("/", attack)]), name="attacker") as attacker:
        assert attacker.port != server.port
        page = browser.new_page()
        page.goto(attacker.url + "/")
        page.wait_for_function("window.done === true")
        results = page.evaluate("window.results")
        page.close()
    # the browser sent the blind requests (opaque answers); the CORS one stopped at its preflight
    assert not (folder / "labels").exists()
    assert results == {"simple": "opaque:0", "noCorsJson": "opaque:0", "corsJson": "blocked"}
    label = "/api/items/exec-000-{:05d}/label".format
    assert sorted(refusals(caplog)) == [
        ("OPTIONS", label(2), "UnsupportedMediaTypeError"),  # the preflight: never granted
        ("POST", label(0), "UnsupportedMediaTypeError"),
        ("POST", label(1), "UnsupportedMediaTypeError"),  # no-cors: the browser sent text/plain instead
        ("POST", label(3), "UnsupportedMediaTypeError"),
        ("POST", label(4), "UnsupportedMediaTypeError"),
    ]


def test_a_dns_rebinding_page_can_neither_read_the_queue_nor_write_a_label(browser, served, caplog):
    server, folder = served
    origin = f"http://{REBIND_NAME}:{server.port}"
    flags = [f"--host-resolver-rules=MAP {REBIND_NAME} 127.0.0.1",
             # Chromium 156's Local Network Access checks would stop this page's fetches in the browser (a page
             # loaded from a "public" server reaching loopback); other browsers and older ones have no such
             # check, so it is turned off: what is tested here is the review server's own refusal.
             "--disable-features=LocalNetworkAccessChecks"]
    with caplog.at_level(logging.WARNING, logger="review.security"), chromium_with(browser, flags) as rebinding_browser:
        page = rebinding_browser.new_page()
        # the attacker's server answers the first load of its page; then its name resolves to 127.0.0.1
        page.route(f"{origin}/", lambda route: route.fulfill(status=200, content_type="text/html",
                                                             body="<!doctype html><title>attacker</title>"))
        page.goto(f"{origin}/")
        page.unroute(f"{origin}/")
        statuses = page.evaluate(REBOUND_ATTACK)
        reload = page.goto(f"{origin}/")
        assert reload is not None and reload.status == 403
        page.close()
    assert not (folder / "labels").exists()
    assert statuses == {"queue": 403, "image": 403, "label": 403, "undo": 403}
    label = "/api/items/exec-000-00000/label"
    assert [refused for refused in refusals(caplog) if refused[1] != "/favicon.ico"] == [
        ("GET", "/api/queue", "HostNotAllowedError"), ("GET", "/api/items/exec-000-00000/image", "HostNotAllowedError"),
        ("POST", label, "HostNotAllowedError"), ("DELETE", label, "HostNotAllowedError"),
        ("GET", "/", "HostNotAllowedError")]


def test_a_reviewer_on_a_token_server_opens_the_printed_url_and_labels_with_the_keyboard(browser, tmp_path):
    folder = write_review_folder(tmp_path / "bucket", queued_images(5))
    policy = AccessPolicy.for_bind("127.0.0.1", token=True)
    running, _ = start_review(str(folder), CLASSES, policy=policy, reviewer="ann")
    try:
        page = browser.new_page()
        errors = page_errors(page)
        assert page.goto(running.url + "/").status == 401  # without the token: nothing
        page.goto(f"{running.url}/?token={policy.token}")
        assert page.url == running.url + "/"  # the secret left the address bar
        page.wait_for_function("document.getElementById('progress').textContent === '5 of 5 left'")
        assert page.evaluate("document.cookie") == ""  # HttpOnly: the page's scripts cannot read it
        page.keyboard.press("2")
        page.wait_for_function("document.getElementById('progress').textContent === '4 of 5 left'")
        page.keyboard.press("u")
        page.wait_for_function("document.getElementById('progress').textContent === '5 of 5 left'")
        page.keyboard.press("1")
        page.wait_for_function("document.getElementById('progress').textContent === '4 of 5 left'")
        assert errors == []
        page.close()
    finally:
        running.stop()
    (line,) = [json.loads(path.read_text()) for path in (folder / "labels").glob("*.jsonl")]
    assert (line["vehicle-class-metadata"]["class-name"], line["review"]["reviewer"]) == ("bicycle", "ann")
