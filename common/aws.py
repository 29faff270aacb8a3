"""One way to make AWS clients, with the AWS CLI's precedence for region and profile.

Profile: --profile, then AWS_PROFILE (botocore's own handling). Region: --region, then AWS_REGION
(which the AWS CLI v2 and the Lambda runtime set, but botocore alone ignores), then AWS_DEFAULT_REGION,
then the profile's region, then samconfig.toml's `region` (the one `sam deploy` used). A profile that
does not exist is reported by name when the first client is made, not at import.
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


def session(region: str | None = None, profile: str | None = None) -> Any:
    """A boto3 Session for --region / --profile (None: from the environment, as the AWS CLI does)."""
    import boto3

    base = boto3.Session(profile_name=profile)
    chosen = resolve_region(region, base.region_name)
    return base if chosen == base.region_name else boto3.Session(profile_name=profile, region_name=chosen)


def aws_options(command: F) -> F:
    """--region and --profile on an AWS command; the command receives them as `region` and `profile`."""
    command = click.option("--profile", envvar="AWS_PROFILE", show_envvar=True,
                           help="AWS profile (default: AWS_PROFILE, else the default profile).")(command)
    command = click.option("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's "
                                            "region, then samconfig.toml's).")(command)
    return command
