"""The data bucket every AWS command defaults to, found and created with this project's own boto3 clients.

The stack's DataBucketName defaults to "": the SageMaker default bucket, `sagemaker-<region>-<account>`. The
SageMaker SDK can name and create that bucket (`Session.default_bucket()`), but it asks STS for the account on a
fixed regional host (`endpoint_url=sts_regional_endpoint(region)` in sagemaker/session.py), ignoring
AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_STS and a profile's endpoint_url: against a VPC endpoint, FIPS or an emulator
it fails or talks to another AWS. Here the account comes from common.aws.account_id and the bucket from the
caller's S3 client, both made by common.aws.session, so every call goes where botocore's endpoint settings say.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from common import settings
from common.aws import account_id
from common.errors import EnvironmentProblem

MISSING_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})
DENIED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "Forbidden"})


class BucketMissingError(EnvironmentProblem):
    """The bucket does not exist (in this account, region and endpoint)."""


class BucketAccessError(EnvironmentProblem):
    """The credentials may not use the bucket (or, for the default bucket's name, another account owns it)."""


@dataclass(frozen=True)
class BucketChoice:
    """The bucket a command uses, and where the name came from (the messages say which to change)."""

    name: str
    source: str  # "--bucket", "samconfig.toml" or "default" (the SageMaker default bucket, as the stack)
    account: str | None = None  # the caller's account, known when the default name was made

    @property
    def is_default(self) -> bool:
        return self.source == "default"

    @property
    def hint(self) -> str:
        """What to do when the bucket is missing."""
        if self.is_default:
            return "it is the SageMaker default bucket the stack uses: `.venv/bin/python -m data_prep stage` creates it"
        if self.source == "samconfig.toml":
            return "create it, or correct DataBucketName in samconfig.toml's parameter_overrides"
        return "create it, or check --bucket (without it: samconfig.toml's DataBucketName, else the default bucket)"


def default_bucket_name(boto_session: Any) -> tuple[str, str]:
    """(sagemaker-<region>-<account>, account): the name the stack and SageMaker use when DataBucketName is ""."""
    account = account_id(boto_session)
    return f"sagemaker-{boto_session.region_name}-{account}", account


def data_bucket(bucket: str | None, boto_session: Any) -> BucketChoice:
    """--bucket, else samconfig.toml's DataBucketName when it names one, else the SageMaker default bucket (what
    the stack uses then). Only the last asks AWS anything (STS, for the account)."""
    if bucket:
        return BucketChoice(bucket, "--bucket")
    configured = settings.deployed_bucket()
    if configured:
        return BucketChoice(configured, "samconfig.toml")
    name, account = default_bucket_name(boto_session)
    return BucketChoice(name, "default", account)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def named_bucket_errors(choice: BucketChoice, needs: str) -> Iterator[None]:
    """A missing or forbidden bucket, named with what to do (`needs`: the permissions the step uses); any other AWS
    error (expired credentials, throttling) as it is, for the CLI runner to explain. Both are exit status 3."""
    try:
        yield
    except ClientError as error:
        code = _code(error)
        if code in MISSING_CODES:
            raise BucketMissingError(f"bucket {choice.name!r} does not exist: {choice.hint}") from error
        if code in DENIED_CODES:
            owner = " (or another account owns a bucket of that name)" if choice.is_default else ""
            raise BucketAccessError(f"access denied to bucket {choice.name!r}{owner}: the credentials need "
                                    f"{needs}") from error
        raise


def bucket_exists(s3: Any, choice: BucketChoice) -> bool:
    """HeadBucket: True when it exists and is ours to use; False when it does not exist. For the default bucket's
    name the owner is checked too (ExpectedBucketOwner, as the SDK does against bucket squatting)."""
    owner = {"ExpectedBucketOwner": choice.account} if choice.is_default and choice.account else {}
    try:
        s3.head_bucket(Bucket=choice.name, **owner)
    except ClientError as error:
        if _code(error) in MISSING_CODES:
            return False
        with named_bucket_errors(choice, "s3:ListBucket"):
            raise
    return True


def ensure_bucket(s3: Any, choice: BucketChoice, region: str) -> bool:
    """Create the bucket when it does not exist (in `region`); True when this call created it."""
    if bucket_exists(s3, choice):
        return False
    # us-east-1 takes no LocationConstraint (CreateBucket refuses "us-east-1" as one)
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=choice.name, **location)
    except ClientError as error:
        if _code(error) in {"BucketAlreadyOwnedByYou", "OperationAborted"}:  # made meanwhile, by us
            return False
        with named_bucket_errors(choice, "s3:CreateBucket"):
            raise
    return True
