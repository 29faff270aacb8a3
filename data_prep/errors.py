"""The base of data_prep's named errors (bad input, a refused archive, missing setup)."""

from __future__ import annotations

from common.errors import InputError


class DataPrepError(InputError):
    """A named, expected failure of a data_prep step. The message says what to do."""
