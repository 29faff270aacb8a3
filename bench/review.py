"""Benchmark: review throughput through the review page's JSON API (items labelled per minute).

Writes `--items` review records with their images (as the state machine leaves them) to a folder that
mirrors a bucket, or to an in-process moto S3 bucket (`--source s3`), starts `python -m review serve`'s
server on it, and lets `--reviewers` scripted reviewers work through the queue at once, each as the page
does: GET /api/queue?reviewer=R, claim the first image nobody else holds, POST its label (409: someone
was faster, take the next). This measures the server and the store (a label is a durable object
written before the answer: fsync on a folder, a conditional PutObject on S3), not a person's eyes.
It checks that every item got exactly one label.

    .venv/bin/python -m bench.review [--items 500] [--reviewers 2] [--source folder|s3]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from bench.concurrency import run_together
from bench.results import record, this_command
from common.stats import percentile
from review.server import start_review
from testkit.review import CLASSES, put_review_records, queued_images, write_review_folder


@contextmanager
def review_source(kind: str, items: int) -> Iterator[tuple[str, object]]:
    """(source, boto3 session or None) holding `items` queued images."""
    images = queued_images(items)
    if kind == "folder":
        with tempfile.TemporaryDirectory(prefix="bench-review-") as folder:
            yield str(write_review_folder(Path(folder), images)), None
        return
    import boto3
    from moto import mock_aws

    from common.environ import patched_environ
    from workflow.offline.runtime import FAKE_CREDENTIALS

    with patched_environ(FAKE_CREDENTIALS), mock_aws():
        session = boto3.Session(region_name="us-east-1")
        session.client("s3").create_bucket(Bucket="bench-review")
        put_review_records(session.client("s3"), "bench-review", queued_images(items, bucket="bench-review"))
        yield "s3://bench-review", session


def reviewer(url: str, name: str, results: dict[str, list], lock: threading.Lock) -> None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    latencies, statuses = [], []
    while True:
        status, queue = call("GET", f"/api/queue?reviewer={name}")
        free = [item for item in queue["items"] if not item["claimed_by_other"]]
        if not free:
            if not queue["items"]:
                break
            time.sleep(0.01)  # everything left is held by the other reviewers: they are about to label it
            continue
        item = free[0]
        if call("POST", f"/api/items/{item['id']}/claim", {"reviewer": name})[0] == 409:
            continue
        started = time.perf_counter()
        status, _ = call("POST", f"/api/items/{item['id']}/label",
                         {"label": CLASSES[len(item["id"]) % 2], "reviewer": name})
        latencies.append(time.perf_counter() - started)
        statuses.append(status)
    connection.close()
    with lock:
        results["latencies"].extend(latencies)
        results["statuses"].extend(statuses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--reviewers", type=int, default=2)
    parser.add_argument("--source", choices=["folder", "s3"], default="folder")
    args = parser.parse_args()
    with review_source(args.source, args.items) as (source, session):
        server, queue = start_review(source, CLASSES, session=session)
        results: dict[str, list] = {"latencies": [], "statuses": []}
        lock = threading.Lock()
        elapsed = run_together(functools.partial(reviewer, server.url, f"reviewer-{i}", results, lock)
                               for i in range(args.reviewers))
        labelled = queue.store.label_ids()
        server.stop()
    statuses = Counter(results["statuses"])
    latencies = results["latencies"]
    print(f"review API, {args.source} source, {args.items} items, {args.reviewers} reviewers at once:")
    print(f"  {statuses[201]} labelled in {elapsed:.1f} s: {statuses[201] / elapsed * 60:,.0f} items/minute "
          f"(label POST p50 {percentile(latencies, 50) * 1000:.1f} ms, p95 {percentile(latencies, 95) * 1000:.1f} ms)")
    print(f"  answers: {dict(statuses)}; label objects: {len(labelled)} (every item exactly once: "
          f"{len(labelled) == args.items == statuses[201]})")
    once = "every item labelled exactly once" if len(labelled) == args.items == statuses[201] else "LABELS LOST"
    record(f"review_{args.source}", what=f"review: items labelled per minute through the API, {args.reviewers} "
                                         f"scripted reviewers at once (queue, claim, label), {args.items} items, "
                                         f"{'folder' if args.source == 'folder' else 'moto S3'} source",
           result=f"{statuses[201] / elapsed * 60:,.0f} items/minute (label POST p50 "
                  f"{percentile(latencies, 50) * 1000:.1f} ms); {once}", command=this_command("bench.review"))


if __name__ == "__main__":
    main()
