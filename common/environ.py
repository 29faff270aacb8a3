"""One way to set environment variables for a while and put the old values back."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_LOCK = threading.RLock()

AWS_PREFIX = "AWS_"  # every setting botocore and the AWS CLI read from the environment starts with it


@contextmanager
def patched_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set `values` in os.environ until the block ends (None: the variable is removed), then restore (or remove)
    each one.

    The process has one environment: a patch holds a re-entrant lock for its whole block, so patches
    nest in one thread (restored last-in first-out) and a patch from another thread waits instead
    of restoring values this one still relies on.
    """
    with _LOCK:
        saved = {key: os.environ.get(key) for key in values}
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


@contextmanager
def isolated_aws_environ(values: Mapping[str, str] | None = None) -> Iterator[None]:
    """Only `values` as AWS settings until the block ends: every other AWS_* variable is removed and the AWS config
    and credentials files point at nothing (os.devnull), so botocore finds no profile, endpoint, FIPS or dual-stack
    setting, CA bundle or credential of the user's.

    Why: the offline runtime is a fake AWS account in this process (moto on loopback). A user's AWS_ENDPOINT_URL,
    AWS_PROFILE or a profile's `endpoint_url` would otherwise send its calls elsewhere (or fail them), and an
    offline run must not depend on, or reach, the user's AWS. moto reads the profile when it is imported, so enter
    this before importing the offline runtime. The instance metadata service is off too (no credentials from it).
    """
    with _LOCK:
        removed: dict[str, str | None] = {name: None for name in os.environ if name.startswith(AWS_PREFIX)}
        nothing = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                   "AWS_EC2_METADATA_DISABLED": "true"}
        with patched_environ({**removed, **nothing, **(values or {})}):
            yield
