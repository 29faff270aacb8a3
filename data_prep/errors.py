"""The base of every error data_prep reports to a user as a message rather than a traceback."""


class DataPrepError(Exception):
    """A named, expected failure: bad input, missing setup, a refused archive. The message says what to do."""
