"""Named errors and the exit statuses every command-line tool here shares.

A named error is an expected failure whose message says what happened and what to do; the CLI
runner prints it in one line and exits with the error's status. Statuses, the same for every CLI:

    0  done                         1  a check failed (drift found, a model held back)
    2  bad usage or input           3  the environment: AWS credentials, region, access, a service
    4  an unexpected error (a bug): the traceback is printed; never 1, which a script reads as a verdict
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    CHECK_FAILED = 1
    INPUT = 2
    ENVIRONMENT = 3
    UNEXPECTED = 4


class NamedError(Exception):
    """An expected failure with a message that says what to do; `exit_status` is the CLI's status."""

    exit_status: ExitStatus = ExitStatus.INPUT


class InputError(NamedError):
    """The user's input is wrong: a path, an option, a file's content."""

    exit_status = ExitStatus.INPUT


class EnvironmentProblem(NamedError):
    """Something outside the input is missing or refusing: credentials, region, a stack, a service."""

    exit_status = ExitStatus.ENVIRONMENT
