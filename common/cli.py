"""What every `python -m ...` command shares: one error runner, progress bars, one console per stream.

Results go to stdout; progress, notes and errors go to stderr, so a command's output can be piped.
Every named error, AWS error or bad input ends as one line on stderr and the exit status of
common.errors.ExitStatus; `--debug` (or SCONES_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from common.aws_errors import explain_aws_error
from common.errors import ExitStatus, NamedError
from common.progress import Progress as ProgressCallback

out = Console(soft_wrap=True)  # results: never wrapped mid-word, so commands and ARNs can be pasted
err = Console(stderr=True, soft_wrap=True)  # progress, notes and errors


def debug_requested() -> bool:
    return os.environ.get("SCONES_DEBUG", "") not in {"", "0"} or "--debug" in sys.argv[1:]


def fail(message: str, status: int) -> None:
    err.print(message, markup=False, highlight=False)
    raise SystemExit(status)


def run_cli(group: click.Group, prog_name: str) -> None:
    """Run a click group; expected failures become one line on stderr and a documented exit status."""
    args = [arg for arg in sys.argv[1:] if arg != "--debug"]
    debug = debug_requested()
    try:
        result = group.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as error:
        error.show()
        raise SystemExit(ExitStatus.INPUT) from None
    except NamedError as error:
        if debug:
            raise
        fail(f"{type(error).__name__}: {error}", error.exit_status)
    except Exception as error:  # noqa: BLE001 - AWS errors are explained; anything else is a bug, shown whole
        explained = explain_aws_error(error)
        if explained is None or debug:
            raise
        fail(explained, ExitStatus.ENVIRONMENT)
    raise SystemExit(result if isinstance(result, int) else ExitStatus.OK)


@contextmanager
def progress_bar(description: str, *, total: int | None = None, unit: str = "") -> Iterator[ProgressCallback]:
    """A progress bar on stderr; yields the callback a library step reports to."""
    columns: tuple[ProgressColumn, ...]
    if unit == "bytes":
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn())
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                   TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, total: int | None, note: str = "") -> None:
            bar.update(task, completed=done, total=total, description=f"{description} {note}".strip())

        yield update
