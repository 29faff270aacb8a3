"""Benchmark: the classification API offline against the model endpoint alone, in one run.

Starts the local endpoint (with data capture) on a model and the offline runtime with the template's API
(`workflow serve-api`'s services), then sends the same 32x32 PNG:

1. to the endpoint alone (`POST /endpoints/{name}/invocations`, what classify-image sends);
2. through the API (`POST /v1/classifications`, image/png, SigV4-signed once per connection: offline the
   signature is not checked, so re-signing would only measure the client): API Gateway's mapping templates,
   StartSyncExecution of the EXPRESS machine (serialize-image staging the upload, classify-image, the filter,
   the event, the review record for low confidence), then the endpoint.

Each with `--concurrency` keep-alive connections; prints requests/s and p50/p99 latency for both, and the
API's answers by status (200 classified, 202 sent to review: both are successes).

    .venv/bin/python -m bench.api [--model-dir out/model] [--requests 1000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import logging
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from bench.concurrency import run_together
from bench.endpoint import sample_png
from bench.results import model_sha256_of, record, this_command
from common import settings
from common.stats import percentile
from testkit.api_client import signed_headers
from workflow.offline_run import services


def load(url: str, path: str, body: bytes, headers: dict[str, str], requests: int,
         concurrency: int) -> tuple[list[float], Counter[int], float]:
    """(latencies, statuses, elapsed) of `requests` POSTs over `concurrency` keep-alive connections."""
    parts = urlsplit(url)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    share = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]

    def worker(count: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        mine, codes = [], []
        for _ in range(count):
            started = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            codes.append(response.status)
        connection.close()
        with lock:
            latencies.extend(mine)
            statuses.update(codes)

    elapsed = run_together(functools.partial(worker, count) for count in share)
    return latencies, statuses, elapsed


def report(name: str, latencies: list[float], statuses: Counter[int], elapsed: float) -> dict[str, float]:
    row = {"requests/s": len(latencies) / elapsed, "p50 ms": percentile(latencies, 50) * 1000,
           "p99 ms": percentile(latencies, 99) * 1000}
    print(f"{name:<10} {len(latencies):>6} requests  {row['requests/s']:8.1f} requests/s  p50 {row['p50 ms']:7.2f} ms"
          f"  p99 {row['p99 ms']:7.2f} ms  statuses {dict(sorted(statuses.items()))}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    body = sample_png()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
        model_dir = args.model_dir
        if model_dir is None:
            from bench.workflow_throughput import prepare

            _, model_dir = prepare(Path(scratch))
        sha256 = model_sha256_of(model_dir)  # which model the endpoint behind the API served
        with services(model_dir, settings.Layout(Path(scratch) / "run"), serve_api=True) as running:
            endpoint_path = f"/endpoints/{settings.endpoint_name()}/invocations"
            endpoint_headers = {"Content-Type": "image/png"}
            api_url = f"{running.runtime.api_url}/classifications"
            api_headers = signed_headers(api_url, body, "image/png")
            api_path = urlsplit(api_url).path
            warm = max(10, args.concurrency * 2)
            load(running.endpoint_url, endpoint_path, body, endpoint_headers, warm, args.concurrency)
            load(api_url, api_path, body, api_headers, warm, args.concurrency)
            print(f"{args.requests} POSTs of a {len(body)}-byte PNG, {args.concurrency} keep-alive connections each")
            alone = report("endpoint", *load(running.endpoint_url, endpoint_path, body, endpoint_headers,
                                             args.requests, args.concurrency))
            api_latencies, api_statuses, api_elapsed = load(api_url, api_path, body, api_headers, args.requests,
                                                            args.concurrency)
            through = report("API", api_latencies, api_statuses, api_elapsed)
    failed = sum(count for status, count in api_statuses.items() if status not in (200, 202))
    print(f"API / endpoint: {through['p50 ms'] / alone['p50 ms']:.1f}x the p50, "
          f"{alone['requests/s'] / through['requests/s']:.1f}x fewer requests/s; "
          f"{'every request answered 200 or 202' if not failed else f'{failed} requests FAILED'}")
    answers = ", ".join(f"{count} answered {status}" for status, count in sorted(api_statuses.items()))
    record("api", what=f"API: `POST /classifications` offline (image/png, {args.concurrency} keep-alive connections) "
                       f"against the endpoint alone, one run of {args.requests} each",
           result=f"API {through['requests/s']:.1f} requests/s, p50 {through['p50 ms']:.0f} ms, p99 "
                  f"{through['p99 ms']:.0f} ms ({answers}); the endpoint alone {alone['requests/s']:,.0f} requests/s, "
                  f"p50 {alone['p50 ms']:.1f} ms, p99 {alone['p99 ms']:.1f} ms",
           command=this_command("bench.api"), model_sha256=sha256)


if __name__ == "__main__":
    main()
