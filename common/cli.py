"""What every command-line tool here shares: one error runner, the group options, progress bars, one console
per stream, JSON output and a terminal kept for our own lines.

Results go to stdout; progress, notes and errors go to stderr, so a command's output can be piped.
Every named error, AWS error or bad input ends as one line on stderr and the exit status of
common.errors.ExitStatus; `--debug` (or SCONES_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

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
from common.hints import hint
from common.progress import Progress as ProgressCallback
from common.settings import package_version

out = Console(soft_wrap=True)  # results: never wrapped mid-word, so commands and ARNs can be pasted
err = Console(stderr=True, soft_wrap=True)  # progress, notes and errors

DEBUG_ENV = "SCONES_DEBUG"
F = TypeVar("F", bound=Callable[..., Any])


def debug_requested() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in {"", "0"} or "--debug" in sys.argv[1:]


def fail(message: str, status: int) -> NoReturn:
    err.print(message, markup=False, highlight=False)
    raise SystemExit(status)


def fail_with_traceback(status: int) -> NoReturn:
    """--debug: the whole traceback of the error being handled, and still the exit status it maps to (a script
    reading the status must not see "a check failed" because someone asked for more detail)."""
    traceback.print_exc(file=sys.stderr)
    raise SystemExit(status)


def quiet_libraries() -> None:
    """Keep SDK chatter off the terminal before any SDK is imported: the SageMaker SDK prints its v2 deprecation
    notice twice (a warning and a log line) and an INFO line per config file it did not find, on stdout."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)


def _file_error(error: OSError) -> str | None:
    """One line for a file the command could not read or write (a path given by the user, most often)."""
    if not isinstance(error, FileNotFoundError | FileExistsError | IsADirectoryError | NotADirectoryError
                      | PermissionError) or not error.filename:
        return None
    return f"{type(error).__name__}: {error.filename}: {error.strerror} (check the path)"


def script_name(prog_name: str) -> str:
    """`python -m workflow` -> `scones-workflow`: the console script pyproject.toml installs for the package."""
    return "scones-" + prog_name.rsplit(" ", 1)[-1].replace("_", "-")


def shown_name(prog_name: str, argv0: str, complete_var: str) -> str:
    """What usage lines and click's "Try '... --help'" call the command: what the user ran, so it runs as printed.
    Run as `python -m workflow`: `.venv/bin/python -m workflow` (settings.hint). Run as the console script: the
    path the shell ran (`.venv/bin/scones-workflow`, argv[0]), or the bare name when that is what PATH finds.
    Shell completion (`complete_var` set) registers the bare name, the one a user types."""
    script = script_name(prog_name)
    if Path(argv0).name != script:
        return hint(prog_name.rsplit(" ", 1)[-1])
    if os.sep not in argv0 or complete_var in os.environ:
        return script
    found = shutil.which(script)
    return script if found and Path(found).resolve() == Path(argv0).resolve() else argv0


def run_cli(group: click.Group, prog_name: str) -> None:
    """Run a click group; expected failures become one line on stderr and a documented exit status.

    `prog_name` is the `python -m` form; usage lines and click's "Try '... --help'" name the command as the user
    ran it (shown_name), and click's shell completion answers on `_SCONES_WORKFLOW_COMPLETE`.
    """
    quiet_libraries()
    script = script_name(prog_name)
    complete_var = f"_{script.upper().replace('-', '_')}_COMPLETE"
    args = [arg for arg in sys.argv[1:] if arg != "--debug"]
    debug = debug_requested()
    shown = shown_name(prog_name, sys.argv[0], complete_var)
    try:
        result = group.main(args=args, prog_name=shown,
                            complete_var=complete_var, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        fail("aborted", 130)
    except click.ClickException as error:
        error.show()
        raise SystemExit(ExitStatus.INPUT) from None
    except NamedError as error:
        if debug:
            fail_with_traceback(error.exit_status)
        fail(f"{type(error).__name__}: {error}", error.exit_status)
    except Exception as error:  # noqa: BLE001 - AWS and file errors are explained; anything else is a bug, shown whole
        explained = explain_aws_error(error)
        if explained is not None:
            if debug:
                fail_with_traceback(ExitStatus.ENVIRONMENT)
            fail(explained, ExitStatus.ENVIRONMENT)
        file_problem = _file_error(error) if isinstance(error, OSError) else None
        if file_problem is None:
            traceback.print_exc(file=sys.stderr)
            fail(f"unexpected error (a bug, not your input): {type(error).__name__}; the traceback is above",
                 ExitStatus.UNEXPECTED)
        if debug:
            fail_with_traceback(ExitStatus.INPUT)
        fail(file_problem, ExitStatus.INPUT)
    raise SystemExit(result if isinstance(result, int) else ExitStatus.OK)


def group_options(group: F) -> F:
    """--version (the installed package's) and --debug, listed in the group's help.

    run_cli takes `--debug` out of the arguments wherever it stands (`python -m workflow run --debug` works), so
    the option here only documents it.
    """
    group = click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
                         help=f"On an error, show the whole traceback instead of one line (or set {DEBUG_ENV}=1).",
                         )(group)
    def show_version(context: click.Context, _: click.Parameter, value: bool) -> None:
        if not value or context.resilient_parsing:
            return
        shown = context.find_root().info_name or ""  # a script's path names the script; `... -m workflow` stays
        click.echo(f"{shown if ' ' in shown else Path(shown).name} {package_version()}")
        context.exit()

    return click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=show_version,
                        help="Show the version and exit.")(group)


def confirm(question: str) -> bool:
    """Ask on stderr; True to go on, False when the user declines (a decline is a choice, not a failure: the caller
    says that nothing changed and exits 0). Ctrl-C is still `aborted` (130); with no one to answer (stdin closed
    or not a terminal that answers), a usage error (2) that names --yes and --dry-run."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.exceptions.Abort as error:
        if isinstance(error.__context__, EOFError):
            raise click.UsageError(f"no answer to {question!r} (stdin is closed): pass --yes to go ahead, or "
                                   "--dry-run to see what would change") from None
        raise


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document on stdout instead of the table (progress stays on stderr).")


def print_json(data: Any) -> None:
    """Exactly one JSON document on stdout, for scripts (`... --json | jq`)."""
    click.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def progress_bar(description: str, *, total: int | None = None, unit: str = "") -> Iterator[ProgressCallback]:
    """A progress bar on stderr; yields the callback a library step reports to.

    The bar appears at the first report, so a step that fails before any (a refused bucket, a missing file) ends
    in its one error line, not under an empty bar. Other writers to stdout and stderr are not redirected through
    the bar: during a long step they go to the run's log (see terminal_for_our_lines).
    """
    columns: tuple[ProgressColumn, ...]
    if unit == "bytes":
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn())
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                   TimeRemainingColumn())
    bar = Progress(*columns, console=err, transient=False, redirect_stdout=False, redirect_stderr=False)
    task = bar.add_task(description, total=total)
    started = False
    lock = threading.Lock()  # steps report from worker threads

    def update(done: int, total: int | None, note: str = "") -> None:
        nonlocal started
        with lock:
            if not started:
                started = True
                bar.start()
        bar.update(task, completed=done, total=total, description=f"{description} {note}".strip())

    try:
        yield update
    finally:
        if started:
            bar.stop()


class RunLog:
    """The log file of a long command: library warnings and log records go there instead of the terminal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._start = path.stat().st_size if path.exists() else 0

    def note(self) -> str | None:
        """One line for the terminal when libraries wrote to the log during the block, else None."""
        grew = self.path.exists() and self.path.stat().st_size > self._start
        return f"library warnings and logs: {self.path}" if grew else None


def _stream_handlers() -> Iterator[logging.StreamHandler[Any]]:
    loggers = [logging.getLogger(), *(value for value in logging.Logger.manager.loggerDict.values()
                                       if isinstance(value, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            # logging.lastResort's kind reads sys.stderr at each record (its stream cannot be set): it follows
            # the block's stderr by itself
            settable = not isinstance(getattr(type(handler), "stream", None), property)
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) \
                    and settable:
                yield handler


@contextmanager
def terminal_for_our_lines(log_path: Path) -> Iterator[RunLog]:
    """While the block runs, what libraries write to stderr (warnings, log records, prints) goes to `log_path`; the
    terminal keeps our progress bars, notes and results.

    torch's ONNX exporter logs four "torchvision is not installed" lines and a FutureWarning on every training run,
    matplotlib warns about legends: nothing a user can act on. stderr is pointed at the log file, so handlers that
    libraries create during the block (torch creates its own) write there too; handlers made before it that write
    to the terminal are pointed at the file, and everything is put back at the end. The `err` console keeps
    the real stderr.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = RunLog(log_path)
    terminal = sys.stderr
    terminals = {id(stream) for stream in (sys.stderr, sys.__stderr__, sys.stdout, sys.__stdout__)}
    with log_path.open("a", encoding="utf-8") as stream:
        to_file = logging.StreamHandler(stream)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        moved = {handler: handler.stream for handler in _stream_handlers() if id(handler.stream) in terminals}
        for handler in moved:
            handler.setStream(stream)
        root = logging.getLogger()
        root.addHandler(to_file)
        shown = warnings.showwarning

        def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                         file: IO[str] | None = None, line: str | None = None) -> None:
            stream.write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.showwarning = show_warning
        err.file, sys.stderr = terminal, stream
        try:
            yield log
        finally:
            sys.stderr = terminal
            err.file = None  # type: ignore[assignment]  # rich: None means "the current sys.stderr" again
            warnings.showwarning = shown
            root.removeHandler(to_file)
            for handler in _stream_handlers():  # those moved, and those libraries made during the block
                if handler.stream is stream:
                    handler.setStream(moved.get(handler, terminal))
            stream.flush()
