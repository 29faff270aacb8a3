"""Benchmark: the local endpoint against the model's own decode + forward time, side by side.

1. model: Predictor.decode + forward in-process, p50 over N calls (the floor for any server);
2. cold start: `python -m data_prep serve` process start to its first answered POST /invocations;
3. single connection: sequential keep-alive POSTs, p50 / p99;
4. throughput: 4 keep-alive connections (threads), a bounded number of requests, requests/s.

Targets: single-connection p50 <= 2x the model time and <= 1 ms; >= 1,000 requests/s; cold start <= 1 s.
The load generator runs on the same 2 cores as the server, on loopback only. Steps 3 and 4 run twice when
wrk is installed (Debian's `wrk`): with Python's http.client, whose own ~0.1 ms per request is counted
in its numbers, and with wrk (C), which measures the server more closely. Both are printed.

    .venv/bin/python -m bench.endpoint [--model-dir data/model]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import math
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.concurrency import run_together
from bench.results import model_sha256_of, record, this_command
from common.settings import SHARED_TRAIN_IMAGES
from common.stats import percentile
from data_prep.serving.predictor import Predictor

HEADERS = {"Content-Type": "image/png"}


def sample_png() -> bytes:
    files = sorted((SHARED_TRAIN_IMAGES / "bicycle").glob("*.png"))
    if files:
        return files[0].read_bytes()
    from testkit.images import png_bytes

    return png_bytes()


def model_time(model_dir: Path, body: bytes, count: int) -> float:
    predictor = Predictor(model_dir)
    for _ in range(200):
        predictor.forward(predictor.decode(body, "image/png"))
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        predictor.forward(predictor.decode(body, "image/png"))
        samples.append(time.perf_counter() - started)
    return percentile(samples, 50)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(model_dir: Path, body: bytes) -> tuple[subprocess.Popen[bytes], int, float]:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "data_prep", "serve", "--model-dir", str(model_dir),
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("POST", "/invocations", body=body, headers=HEADERS)
            if connection.getresponse().status == 200:
                return process, port, time.perf_counter() - started
        except OSError:
            if process.poll() is not None or time.perf_counter() - started > 30:
                raise RuntimeError("the endpoint did not start") from None
            time.sleep(0.01)


def timed_requests(port: int, body: bytes, count: int, samples: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers=HEADERS)
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    connection.close()


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local file = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = file:read("*a")
file:close()
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %.6f %.3f\\n", summary.requests, summary.duration / 1e6,
                         latency:percentile(50) / 1000))
end
"""


def wrk_run(port: int, body: bytes, connections: int, seconds: int, scratch: Path) -> tuple[float, float] | None:
    """(requests/s, p50 ms) from wrk, or None when wrk is not installed."""
    import os
    import shutil

    if shutil.which("wrk") is None:
        return None
    (scratch / "post.lua").write_text(WRK_SCRIPT)
    (scratch / "body.png").write_bytes(body)
    output = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "-s", str(scratch / "post.lua"),
         f"http://127.0.0.1:{port}/invocations"], capture_output=True, text=True, check=True, timeout=seconds + 30,
        env={**os.environ, "BENCH_BODY": str(scratch / "body.png")},
    ).stdout
    line = next(text for text in output.splitlines() if text.startswith("RESULT"))
    _, requests, duration, p50 = line.split()
    return int(requests) / float(duration), float(p50)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("data/model"))
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    body = sample_png()
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = args.model_dir
        if not (model_dir / "model.onnx").exists():  # latency depends on the architecture, not the weights
            from data_prep.training.local import train_local
            from data_prep.training.train import TrainConfig
            from testkit.images import labelled_folder

            model_dir = Path(scratch) / "model"
            train_local(labelled_folder(Path(scratch) / "images"), model_dir, TrainConfig(epochs=1))
        sha256 = model_sha256_of(model_dir)  # which model these numbers are about
        forward = model_time(model_dir, body, 2000)
        process, port, cold_start = start_server(model_dir, body)
        try:
            timed_requests(port, body, 200, [])  # warm-up
            single: list[float] = []
            timed_requests(port, body, args.requests // 2, single)
            concurrent: list[float] = []
            elapsed = run_together(functools.partial(timed_requests, port, body, args.requests // 4, concurrent)
                                   for _ in range(4))
            wrk_single = wrk_run(port, body, 1, 5, Path(scratch))
            wrk_four = wrk_run(port, body, 4, 5, Path(scratch))
        finally:
            process.terminate()
            process.wait(10)
    p50 = percentile(single, 50)
    throughput = len(concurrent) / elapsed
    print(f"model decode+forward p50      {forward * 1000:.3f} ms")
    print(f"single connection p50 / p99   {p50 * 1000:.3f} ms / {percentile(single, 99) * 1000:.3f} ms "
          f"({p50 / forward:.2f}x the model; target <= 2x and <= 1 ms: "
          f"{'met' if p50 <= 2 * forward and p50 <= 0.001 else 'MISSED'})")
    print(f"4 connections                 {throughput:,.0f} requests/s over {len(concurrent)} requests, "
          f"p50 {percentile(concurrent, 50) * 1000:.3f} ms (target >= 1,000: "
          f"{'met' if throughput >= 1000 else 'MISSED'})")
    print(f"cold start to first answer    {cold_start:.2f} s (target <= 1 s: {'met' if cold_start <= 1 else 'MISSED'})")
    if wrk_single and wrk_four:
        p50_wrk = wrk_single[1] / 1000
        print(f"wrk, 1 connection             p50 {wrk_single[1]:.3f} ms ({p50_wrk / forward:.2f}x the model: "
              f"{'met' if p50_wrk <= 2 * forward and p50_wrk <= 0.001 else 'MISSED'}), {wrk_single[0]:,.0f} requests/s")
        print(f"wrk, 4 connections            {wrk_four[0]:,.0f} requests/s, p50 {wrk_four[1]:.3f} ms "
              f"({'met' if wrk_four[0] >= 1000 else 'MISSED'})")
    else:
        print("wrk not installed (apt-get install wrk): only the Python client's numbers")
    record_endpoint(forward, p50, throughput, cold_start, wrk_single, wrk_four, sha256)


LOCAL_SERVER = "the local server (data_prep serve)"  # what these numbers are about: not a SageMaker endpoint


CAPACITY_RATES = (10, 50, 1_000, 5_000)  # the request rates docs/cost.md sizes instances for
HEADROOM = 0.6  # each instance kept at 60% utilisation: latency grows fast near 100%


def capacity_quotes(p50_ms: float) -> dict[str, str]:
    """docs/cost.md's instance arithmetic from the measured p50, so the page's numbers move with the measurement:
    one process serves 1 / p50 requests a second (rounded to tens), HEADROOM of that per instance, and each rate R
    needs max(2, ceil(R / that)) instances (two for availability)."""
    per_process = round(1000 / p50_ms, -1)
    headroom = round(HEADROOM * per_process)
    quotes = {"per_process": f"{per_process:,.0f}", "headroom": f"{headroom:,}"}
    for rate in CAPACITY_RATES:
        needed = math.ceil(rate / headroom)
        quotes[f"at_{rate}"] = f"⌈{rate:,} / {headroom:,}⌉ = {needed}"
        quotes[f"instances_{rate}"] = str(max(2, needed))
    return quotes


def record_endpoint(forward: float, p50: float, throughput: float, cold_start: float,
                    wrk_single: tuple[float, float] | None, wrk_four: tuple[float, float] | None,
                    model_sha256: str) -> None:
    command = this_command("bench.endpoint")
    record("endpoint_model", what="model: decode + forward p50 (the Predictor data_prep serve and the archive's "
                                  "hooks run)", result=f"{forward * 1000:.2f} ms",
           command=command, quotes={"ms": f"{forward * 1000:.2f} ms"}, model_sha256=model_sha256)
    if wrk_single and wrk_four:
        wrk_p50 = wrk_single[1] / 1000
        record("endpoint_wrk", what=f"{LOCAL_SERVER}: 1 keep-alive connection p50, wrk",
               result=f"{wrk_single[1]:.2f} ms ({wrk_p50 / forward:.2f}x the model)", target="≤ 1 ms and ≤ 2x",
               command=f"{command} (wrk from Debian)",
               quotes={"p50": f"{wrk_single[1]:.2f} ms", **capacity_quotes(round(wrk_single[1], 2))},
               model_sha256=model_sha256)
    record("endpoint_python_client",
           what=f"{LOCAL_SERVER}: 1 keep-alive connection p50, Python http.client as the client",
           result=f"{p50 * 1000:.2f} ms ({p50 / forward:.2f}x the model)", command=command, model_sha256=model_sha256)
    four = f"{wrk_four[0]:,.0f} requests/s (wrk); {throughput:,.0f} (Python client)" if wrk_four else \
        f"{throughput:,.0f} requests/s (Python client)"
    record("endpoint_four_connections", what=f"{LOCAL_SERVER}: 4 connections", result=four, target="≥ 1,000",
           command=command, quotes={"rps": f"{(wrk_four[0] if wrk_four else throughput):,.0f} requests/s"},
           model_sha256=model_sha256)
    record("endpoint_cold_start", what=f"{LOCAL_SERVER}: cold start to first answer", result=f"{cold_start:.2f} s",
           target="≤ 1 s", command=command, quotes={"s": f"{cold_start:.2f} s"}, model_sha256=model_sha256)


if __name__ == "__main__":
    main()
