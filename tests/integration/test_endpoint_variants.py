"""Champion and challenger on one local endpoint: weighted split, TargetVariant, the invoked variant in the
answer, and capture per variant in SageMaker's key layout (`<endpoint>/<variant>/yyyy/mm/dd/hh/...`)."""

from __future__ import annotations

import http.client
import json
import math
import shutil
from collections import Counter
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from click.testing import CliRunner

from common import settings
from data_prep.cli import cli
from data_prep.serving.server import EndpointSetupError, start_endpoint
from testkit.images import png_bytes
from tests.support import HANG_GUARD_S

ENDPOINT = settings.endpoint_name()
PATH = f"/endpoints/{ENDPOINT}/invocations"


def copy_model(source: Path, target: Path, variant_name: str | None = None) -> Path:
    shutil.copytree(source, target)
    if variant_name:
        metadata = json.loads((target / "metadata.json").read_text())
        (target / "metadata.json").write_text(json.dumps({**metadata, "variant_name": variant_name}))
    return target


def invoked_variants(port: int, count: int, headers: dict[str, str] | None = None) -> Counter[str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_S)
    body = png_bytes(seed=2)
    seen: Counter[str] = Counter()
    for _ in range(count):
        connection.request("POST", PATH, body=body, headers={"Content-Type": "image/png", **(headers or {})})
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        seen[response.getheader("x-Amzn-Invoked-Production-Variant")] += 1
    connection.close()
    return seen


def files_per_variant(root: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in root.rglob("*.jsonl"):
        parts = path.relative_to(root).parts
        assert len(parts) == 7 and parts[0] == ENDPOINT
        counts[parts[1]] += len(path.read_text().splitlines())
    return counts


def test_traffic_splits_by_weight_and_capture_is_written_per_variant(tiny_model, tmp_path):
    challenger = copy_model(tiny_model, tmp_path / "challenger")
    server, capture = start_endpoint(tiny_model, challenger_model_dir=challenger, challenger_weight=0.3, seed=11,
                                     capture_destination=str(tmp_path / "capture"))
    try:
        requests_sent = 2000
        seen = invoked_variants(server.port, requests_sent)
    finally:
        server.stop()
        capture.close()
    assert set(seen) == {"champion", "challenger"}
    expected, spread = requests_sent * 0.3, math.sqrt(requests_sent * 0.3 * 0.7)
    assert abs(seen["challenger"] - expected) < 4 * spread  # binomial tolerance, 4 standard deviations
    assert files_per_variant(tmp_path / "capture") == seen


def test_target_variant_routes_to_one_and_boto3_reads_the_invoked_variant(tiny_model, tmp_path):
    challenger = copy_model(tiny_model, tmp_path / "challenger")
    server, _ = start_endpoint(tiny_model, challenger_model_dir=challenger, challenger_weight=0.0, seed=1)
    try:
        assert invoked_variants(server.port, 50) == {"champion": 50}  # weight 0: only targeted traffic
        assert invoked_variants(server.port, 20, {"X-Amzn-SageMaker-Target-Variant": "challenger"}) == {
            "challenger": 20}
        client = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=server.url,
                              config=Config(retries={"total_max_attempts": 1}))
        answer = client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png_bytes(),
                                        TargetVariant="challenger")
        assert answer["InvokedProductionVariant"] == "challenger"
        with pytest.raises(client.exceptions.ValidationError,
                           match=f"Variant AllTraffic of endpoint {ENDPOINT} of account 123456789012 not found. "
                                 "Its variants: champion, challenger."):
            client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png_bytes(),
                                   TargetVariant="AllTraffic")
    finally:
        server.stop()


def test_variant_names_come_from_the_models_metadata(tiny_model, tmp_path):
    blue = copy_model(tiny_model, tmp_path / "blue", "blue")
    green = copy_model(tiny_model, tmp_path / "green", "green")
    server, _ = start_endpoint(blue, challenger_model_dir=green, challenger_weight=1.0, seed=1)
    try:
        assert invoked_variants(server.port, 10) == {"green": 10}
        assert invoked_variants(server.port, 5, {"X-Amzn-SageMaker-Target-Variant": "blue"}) == {"blue": 5}
    finally:
        server.stop()
    twin = copy_model(tiny_model, tmp_path / "twin", "blue")
    with pytest.raises(EndpointSetupError, match="both models record the variant name 'blue'"):
        start_endpoint(blue, challenger_model_dir=twin)


def test_the_same_seed_routes_the_same_way(tiny_model, tmp_path):
    challenger = copy_model(tiny_model, tmp_path / "challenger")
    runs = []
    for _ in range(2):
        server, _ = start_endpoint(tiny_model, challenger_model_dir=challenger, challenger_weight=0.5, seed=5)
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HANG_GUARD_S)
            order = []
            for _ in range(30):
                connection.request("POST", PATH, body=png_bytes(), headers={"Content-Type": "image/png"})
                response = connection.getresponse()
                response.read()
                order.append(response.getheader("x-Amzn-Invoked-Production-Variant"))
            runs.append(order)
        finally:
            server.stop()
    assert runs[0] == runs[1] and set(runs[0]) == {"champion", "challenger"}


def test_challenger_weight_without_a_challenger_is_a_usage_error(tiny_model):
    result = CliRunner().invoke(cli, ["serve", "--model-dir", str(tiny_model), "--challenger-weight", "0.2"])
    assert result.exit_code == 2 and "--challenger-weight needs --challenger-model-dir" in result.output
