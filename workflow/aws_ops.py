"""Operations against a deployed stack: run test executions, enable the S3 trigger, clean up.

Each function takes its boto3 clients as arguments, so the same code runs against AWS and against
moto in the tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from common.artefacts import MANIFEST_FILE, parse_manifest, parse_s3_uri
from common.errors import EnvironmentProblem
from common.hints import hint
from workflow.executions import Outcome, Summary, run_all, run_execution


class OperationsError(EnvironmentProblem):
    """The stack, its outputs, or the staged test images are not where they should be."""


def is_not_found(error: ClientError) -> bool:
    """CloudFormation and SageMaker say "does not exist" / "Could not find" as a ValidationError(Exception); any
    other error (access denied, expired credentials, throttling) is not an absence and must not read as one."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in {"ValidationError", "ValidationException", "ResourceNotFound"} and (
        "does not exist" in message or "Could not find" in message)


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as error:
        if not is_not_found(error):
            raise
        raise OperationsError(f"stack {stack_name!r} not found in {cloudformation.meta.region_name}: deploy it "
                              "with `make deploy` first (the pinned SAM CLI builds and deploys it), or pass "
                              "--stack-name / --region") from error
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def pick_test_keys(s3: Any, bucket: str, prefix: str, count: int, seed: int | None = None) -> list[str]:
    """The brief's generate_test_case: `count` random staged test images (without replacement)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/test/")
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])
            if item["Key"].lower().endswith((".png", ".jpg", ".jpeg"))]
    if not keys:
        raise OperationsError(f"no test images under s3://{bucket}/{prefix}/test/: run `{hint('data_prep all')}`")
    return random.Random(seed).sample(keys, min(count, len(keys)))


def staged_labels(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """True labels from the staged manifest, keyed like the test images' S3 keys; none when no manifest is staged
    (the accuracy is then unknown). A manifest AWS refuses to give (access denied, throttling) is an error: it must
    not read as "no labels"."""
    try:
        text = s3.get_object(Bucket=bucket, Key=f"{prefix}/{MANIFEST_FILE}")["Body"].read().decode()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code", "") not in {"NoSuchKey", "404"}:
            raise
        return {}
    return {f"{prefix}/{file}": row.label for file, row in parse_manifest(text).items()}


def run_executions(sfn: Any, state_machine_arn: str, bucket: str, keys: list[str], *,
                   concurrency: int = 8, timeout: float = 300.0, labels: dict[str, str] | None = None,
                   on_done: Callable[[Outcome], None] | None = None) -> Summary:
    """One execution per key; outcomes from the executions themselves (see workflow.executions)."""

    def run_one(key: str) -> Outcome:
        return run_execution(sfn, state_machine_arn, bucket, key, timeout=timeout, poll_interval=0.5,
                             max_poll_interval=5.0)

    return run_all(keys, run_one, concurrency=concurrency, on_done=on_done, labels=labels)


def enable_eventbridge(s3: Any, bucket: str) -> bool:
    """Turn on S3's EventBridge notifications, keeping the bucket's other notifications; True if changed."""
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    current.pop("ResponseMetadata", None)
    if "EventBridgeConfiguration" in current:
        return False
    s3.put_bucket_notification_configuration(Bucket=bucket,
                                             NotificationConfiguration={**current, "EventBridgeConfiguration": {}})
    return True


@dataclass
class CleanupPlan:
    endpoint: str | None = None
    endpoint_config: str | None = None
    models: list[str] = field(default_factory=list)
    stack: str | None = None
    s3_prefixes: list[str] = field(default_factory=list)  # s3://bucket/prefix/

    def lines(self) -> list[str]:
        lines = [f"SageMaker endpoint {self.endpoint}"] if self.endpoint else []
        lines += [f"SageMaker endpoint config {self.endpoint_config}"] if self.endpoint_config else []
        lines += [f"SageMaker model {name}" for name in self.models]
        lines += [f"CloudFormation stack {self.stack} (its functions, state machine, roles, log groups)"
                  ] if self.stack else []
        lines += [f"every object under {prefix}" for prefix in self.s3_prefixes]
        return lines


def plan_cleanup(sagemaker: Any, endpoint_name: str, *, stack_name: str | None, bucket: str | None,
                 prefixes: list[str]) -> CleanupPlan:
    """Only what hangs off this endpoint name, this stack and these prefixes: nothing found by pattern."""
    plan = CleanupPlan(stack=stack_name, s3_prefixes=[f"s3://{bucket}/{p.strip('/')}/" for p in prefixes] if bucket
                       else [])
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if not is_not_found(error):
            raise
        return plan
    plan.endpoint = endpoint_name
    plan.endpoint_config = endpoint["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=plan.endpoint_config)
    plan.models = [variant["ModelName"] for variant in config["ProductionVariants"]]
    return plan


class CleanupIncompleteError(EnvironmentProblem):
    """S3 refused to delete some objects (DeleteObjects answers each key's error in `Errors`, not as an exception):
    they are still there, and cleanup must not report them deleted."""


def delete_prefix(s3: Any, uri: str) -> tuple[int, list[dict[str, str]]]:
    """Delete every object under `uri`, a page (up to 1,000 keys) per DeleteObjects; (deleted, the keys S3 refused,
    each with its Code and Message as DeleteObjects reports them)."""
    location = parse_s3_uri(uri)
    deleted, refused = 0, []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            answer = s3.delete_objects(Bucket=location.bucket, Delete={"Objects": objects, "Quiet": True})
            errors = answer.get("Errors", [])  # Quiet: only the keys that were not deleted are listed
            deleted += len(objects) - len(errors)
            refused += errors
    return deleted, refused


def execute_cleanup(plan: CleanupPlan, *, sagemaker: Any, cloudformation: Any, s3: Any,
                    announce: Callable[[str], None] = lambda line: None) -> list[str]:
    """Delete what the plan lists, announcing each step as it is done; keys S3 refused to delete end it with
    CleanupIncompleteError (after every prefix was tried), never counted as deleted."""
    done = []

    def did(line: str) -> None:
        done.append(line)
        announce(line)

    if plan.endpoint:
        sagemaker.delete_endpoint(EndpointName=plan.endpoint)
        did(f"deleted endpoint {plan.endpoint}")
    if plan.endpoint_config:
        sagemaker.delete_endpoint_config(EndpointConfigName=plan.endpoint_config)
        did(f"deleted endpoint config {plan.endpoint_config}")
    for model in plan.models:
        sagemaker.delete_model(ModelName=model)
        did(f"deleted model {model}")
    if plan.stack:
        cloudformation.delete_stack(StackName=plan.stack)
        did(f"deleting stack {plan.stack}")
    refused: list[dict[str, str]] = []
    for uri in plan.s3_prefixes:
        deleted, errors = delete_prefix(s3, uri)
        did(f"deleted {deleted} objects under {uri}" + (f" ({len(errors)} refused)" if errors else ""))
        refused += errors
    if refused:
        first = refused[0]
        raise CleanupIncompleteError(
            f"S3 refused to delete {len(refused)} objects (first: {first.get('Key')}: {first.get('Code')}: "
            f"{first.get('Message')}); they are still there: check s3:DeleteObject on them (and any Object Lock), "
            "then run cleanup again")
    return done
