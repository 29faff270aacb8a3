"""Where the smoke tests run: a deployed stack (its CloudFormation Outputs), or the offline runtime's endpoints.

- `aws`: skipped unless a stack is named (`make smoke STACK=<name>`, i.e. SCONES_STACK_NAME), as AWS's serverless
  test samples do; the stack's Outputs name the bucket, the state machines, the API and the endpoint; the promoted
  model's sha256 comes from the gate's table (`make smoke STACK=<name> GATE=out/gate.json`: SCONES_GATE_FILE).
- `offline`: the offline runtime's services as `python -m workflow run --keep-running` exposes them (the same
  `workflow.offline_run.services`): the real handlers and ASL, the local endpoint serving a tiny trained model,
  registered in the offline SageMaker control plane as `deploy new` registers it on AWS. CI runs these.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from common import settings

RECORD_PREFIXES = ("review/", "audit/")  # what the workflow writes about an image, named by its execution
STACK_ENV = "SCONES_STACK_NAME"
GATE_ENV = "SCONES_GATE_FILE"


@dataclass
class Target:
    """What the smoke tests call, wherever it runs."""

    name: str
    session: Any  # boto3.Session with the credentials and region to use
    bucket: str
    state_machine_arn: str
    batch_state_machine_arn: str
    classifications_url: str
    endpoint_name: str
    expected_sha256: str | None  # the model the gate promoted (None: no gate named)
    runtime_endpoint_url: str | None = None  # offline: where sagemaker-runtime is served
    batch_prefix: str = settings.batch_prefix()  # the only prefix the batch machine may list (Outputs: BatchPrefix)
    timeout: float = 300.0

    def client(self, service: str) -> Any:
        if service == "sagemaker-runtime" and self.runtime_endpoint_url:
            return self.session.client(service, endpoint_url=self.runtime_endpoint_url)
        return self.session.client(service)


def stack_target(stack: str) -> Target:
    from common.artefacts import read_gate_verdict

    session = boto3.Session(region_name=os.environ.get("AWS_REGION") or settings.samconfig().get("region"))
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs", [])}
    gate = os.environ.get(GATE_ENV)
    expected = (read_gate_verdict(Path(gate)).get("new_model") or {}).get("model_sha256") if gate else None
    return Target(stack, session, outputs["DataBucketName"], outputs["StateMachineArn"],
                  outputs["BatchStateMachineArn"], outputs["ClassificationsUrl"], outputs["EndpointName"], expected,
                  batch_prefix=outputs.get("BatchPrefix", settings.batch_prefix()))


@pytest.fixture(scope="module")  # the offline services (moto, patched environment) end with the module
def offline_target(tmp_path_factory, tiny_model) -> Iterator[Target]:
    from common.model_archive import verify_model_dir
    from workflow.offline_run import services

    layout = settings.Layout(tmp_path_factory.mktemp("smoke-offline"))
    with services(tiny_model, layout, expose_http=True, serve_api=True) as running:
        runtime = running.runtime
        yield Target("offline", boto3.Session(region_name=settings.OFFLINE_REGION), runtime.bucket,
                     runtime.state_machine_arn, runtime.batch_state_machine_arn,
                     f"{runtime.api_url}/classifications", runtime.template.parameters["EndpointName"],
                     str(verify_model_dir(tiny_model)["model_sha256"]), runtime_endpoint_url=running.endpoint_url,
                     timeout=60.0)


@pytest.fixture(scope="module", params=["offline", "aws"])
def target(request) -> Target:
    if request.param == "aws":
        stack = os.environ.get(STACK_ENV)
        if not stack:
            pytest.skip(f"no stack named: `make smoke STACK=<name>` (or {STACK_ENV}) runs these against it")
        return stack_target(stack)
    if os.environ.get(STACK_ENV):
        pytest.skip("a stack is named: the smoke tests run against it, not offline")
    return request.getfixturevalue("offline_target")


@dataclass
class Created:
    """What one smoke test leaves in the bucket, deleted when it ends: the objects it put, prefixes it owns (its batch
    and the batch's results), and the review/ and audit/ records the workflow wrote about its images (found by their
    `s3_key`, among the records written since the test began)."""

    s3: Any
    bucket: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(minutes=1))
    keys: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)

    def put(self, key: str, body: bytes) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.keys.add(key)
        self.images.add(key)
        return key

    def records(self) -> list[str]:
        """review/ and audit/ records about this test's images."""
        found = []
        for prefix in RECORD_PREFIXES:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if item["LastModified"] < self.started:
                        continue
                    body = json.loads(self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read())
                    if body.get("s3_key") in self.images:
                        found.append(str(item["Key"]))
        return sorted(found)

    def remaining(self) -> list[str]:
        """Every object of this test still in the bucket."""
        left = []
        for key in sorted(self.keys):
            listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key).get("Contents", [])
            left += [str(item["Key"]) for item in listed if item["Key"] == key]
        for prefix in sorted(self.prefixes):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                left += [str(item["Key"]) for item in page.get("Contents", [])]
        return sorted(set(left + self.records()))

    def delete(self) -> list[str]:
        doomed = self.remaining()
        for start in range(0, len(doomed), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in
                                                                           doomed[start:start + 1000]]})
        return doomed


@pytest.fixture
def created(target) -> Iterator[Created]:
    made = Created(target.client("s3"), target.bucket)
    yield made
    made.delete()
