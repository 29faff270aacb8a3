"""One way to make AWS clients, with the AWS CLI's precedence for region and profile.

Profile: --profile, then AWS_PROFILE (botocore's own handling). Region: --region, then AWS_REGION
(which the AWS CLI v2 and the Lambda runtime set, but botocore alone ignores), then AWS_DEFAULT_REGION,
then the profile's region, then samconfig.toml's `region` (the one `sam deploy` used). A profile that
does not exist, no region or no credentials are reported when the session is made, before any long step
(botocore's own errors, which common.aws_errors says in one line), never at import: `--help` always works.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from common import settings

F = TypeVar("F", bound=Callable[..., Any])


def resolve_region(region: str | None, botocore_region: str | None) -> str | None:
    """The region the AWS CLI would use: --region, AWS_REGION, then botocore's choice (AWS_DEFAULT_REGION, the
    profile's region), then samconfig.toml's."""
    return (region or os.environ.get("AWS_REGION") or botocore_region
            or settings.samconfig().get("region"))


def session(region: str | None = None, profile: str | None = None, *, credentials: bool = True) -> Any:
    """A boto3 Session for --region / --profile (None: from the environment, as the AWS CLI does).

    Raises botocore's ProfileNotFound, NoRegionError and (with `credentials`) NoCredentialsError at once, so a
    command fails before its first step, not after a dataset build or halfway through a plan. An SSO profile whose
    login expired raises when its credentials are resolved here too.
    """
    import boto3
    from botocore.exceptions import NoCredentialsError, NoRegionError

    base = boto3.Session(profile_name=profile)
    chosen = resolve_region(region, base.region_name)
    if not chosen:
        raise NoRegionError()
    made = base if chosen == base.region_name else boto3.Session(profile_name=profile, region_name=chosen)
    if credentials:
        found = made.get_credentials()
        if found is None:
            raise NoCredentialsError()
        found.get_frozen_credentials()  # an SSO or assume-role profile resolves (or fails) here, once
    return made


def aws_options(command: F) -> F:
    """--region and --profile on an AWS command; the command receives them as `region` and `profile`."""
    command = click.option("--profile", envvar="AWS_PROFILE", show_envvar=True,
                           help="AWS profile (default: AWS_PROFILE, else the default profile).")(command)
    command = click.option("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's "
                                            "region, then samconfig.toml's).")(command)
    return command


def account_id(boto_session: Any) -> str:
    """The caller's account (STS GetCallerIdentity): the first call a command makes, so expired or refused
    credentials fail here, in one line, before anything is created."""
    return str(boto_session.client("sts").get_caller_identity()["Account"])


class lazy_client:  # noqa: N801 - used like a function: lazy_client("s3", region, profile)
    """A client made on first use: for a step that needs AWS only when something is not on disk, so an offline
    run needs no AWS setup, while one that does reach AWS gets session()'s checks (and their one-line errors)."""

    def __init__(self, service: str, region: str | None, profile: str | None) -> None:
        self._service, self._region, self._profile = service, region, profile
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = session(self._region, self._profile).client(self._service)
        return getattr(self._client, name)
