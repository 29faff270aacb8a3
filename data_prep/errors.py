"""Named errors, and how the command-line tools report them: one line, no traceback, exit 2."""

from __future__ import annotations

import click
from rich.console import Console


class DataPrepError(Exception):
    """A named, expected failure: bad input, missing setup, a refused archive. The message says what to do."""


def run_cli(group: click.Group, console: Console, named_errors: tuple[type[BaseException], ...]) -> None:
    """Run a click group; expected, named errors become one red line and exit status 2."""
    try:
        group(standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        raise SystemExit(130) from None
    except click.ClickException as error:
        error.show()
        raise SystemExit(error.exit_code) from None
    except named_errors as error:
        console.print(f"[bold red]{type(error).__name__}[/]: {error}")
        raise SystemExit(2) from None
