"""How a printed hint names one of this project's commands, so it runs as printed.

`make install` puts the project's interpreter in `.venv/bin/python`; a hint runs from the repository root in a shell
where the venv is not activated, where a bare `python -m` is not the venv's. No imports: the code SageMaker's
containers run (common.source_tree's closure) ships this module, and nothing else with it.
"""

from __future__ import annotations

VENV_PYTHON = ".venv/bin/python"


def hint(command: str) -> str:
    """`hint("data_prep transform")` is `.venv/bin/python -m data_prep transform`."""
    return f"{VENV_PYTHON} -m {command}"
