from __future__ import annotations

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network():
    """Unit tests use moto in-process and botocore Stubbers: any socket is an accident."""
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
