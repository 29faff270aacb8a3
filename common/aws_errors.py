"""AWS errors a user can fix, each said in one line with what to do (the CLI runner prints it)."""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId",
                      "UnrecognizedClientException", "InvalidAccessKeyId", "SignatureDoesNotMatch"})
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
                     "Forbidden", "403"})
# The codes AWS services throttle with (also what the offline EventBridge forwarder retries).
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException",
                              "RequestLimitExceeded", "SlowDown", "ProvisionedThroughputExceededException"})


def explain_aws_error(error: BaseException) -> str | None:
    """One line for an AWS error the user can act on, or None when `error` is not one."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return ("no AWS credentials found: run `aws configure` (or `aws sso login`), or set AWS_PROFILE / "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(error, NoRegionError):
        return ("no AWS region set: pass --region, or set AWS_REGION (or a region in your AWS profile or in "
                "samconfig.toml)")
    if isinstance(error, InvalidRegionError):
        region = error.kwargs.get("region_name", "")
        return (f"{region!r} is not an AWS region name: pass one such as eu-west-1 (check --region, AWS_REGION, "
                "AWS_DEFAULT_REGION, your profile and samconfig.toml)")
    if isinstance(error, ProfileNotFound):
        profile = error.kwargs.get("profile", "")
        return (f"the AWS profile {profile!r} does not exist: check --profile / AWS_PROFILE against "
                "`aws configure list-profiles`")
    if isinstance(error, TokenRetrievalError | SSOError):  # no login yet, or it expired (UnauthorizedSSOToken)
        return "no valid AWS SSO login (it expired, or was never made): run `aws sso login --profile NAME`"
    if isinstance(error, BotocoreConnectionError):  # endpoint unreachable, connect timeout, proxy, TLS
        return f"could not reach AWS ({error}): check the network, the region, or AWS_ENDPOINT_URL"
    if isinstance(error, HTTPClientError):  # read timeout, connection closed mid-answer (after botocore's retries)
        return f"the connection to AWS failed ({str(error).rstrip('.')}): check the network and run the command again"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        operation = getattr(error, "operation_name", "the call")
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        if code in _EXPIRED:
            return f"AWS refused the credentials ({code} in {operation}): refresh them (`aws sso login`, new keys)"
        if code in _DENIED:
            return f"access denied ({code} in {operation}): {message}. Ask for that permission or use another profile"
        if code in THROTTLING_CODES:
            return f"AWS is throttling {operation} ({code}): wait a little and run the command again"
        return f"AWS error in {operation}: {code}: {message}"
    return None
