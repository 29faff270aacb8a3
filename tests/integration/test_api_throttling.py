"""The offline API throttles as the template's stage does (ApiThrottlingRateLimit, ApiThrottlingBurstLimit): past
the burst, 429 before any integration call, refilled at the rate. A clock the test moves, so nothing waits."""

from __future__ import annotations

from common.servers import BackgroundServer
from common.template import SamTemplate
from testkit.api_client import ApiClient
from tools.cfn import TEMPLATE
from workflow.offline.api_gateway import LocalRestApi

ROUTE = "/classifications"


def test_past_the_burst_requests_get_429_until_the_rate_refills_the_bucket():
    spec = SamTemplate(TEMPLATE, {"ApiThrottlingRateLimit": "2", "ApiThrottlingBurstLimit": "3"}).api(
        "ClassificationApi")
    assert spec.throttle == (2.0, 3)
    now = [100.0]
    api = LocalRestApi(spec, clock=lambda: now[0])
    with BackgroundServer(api.app(), name="throttled-api") as server:
        client = ApiClient(f"{server.url}/{spec.stage}")
        try:
            # text/plain has no mapping template: 415 from API Gateway itself, so no execution ever starts here
            statuses = [client.post(ROUTE, b"x", "text/plain").status for _ in range(4)]
            throttled = client.post(ROUTE, b"x", "text/plain")
            now[0] += 0.5  # one token back at 2 per second
            after_refill = [client.post(ROUTE, b"x", "text/plain").status for _ in range(2)]
        finally:
            client.close()
    assert statuses == [415, 415, 415, 429]
    assert (throttled.status, throttled.body, throttled.headers["x-amzn-errortype"]) == (
        429, {"message": "Too Many Requests"}, "TooManyRequestsException")
    assert after_refill == [415, 429]


def test_the_deployed_defaults_are_what_the_offline_api_applies():
    assert SamTemplate(TEMPLATE).api("ClassificationApi").throttle == (50.0, 100)
