"""Fixtures for the fleet tests (helpers live in fleet_helpers.py so test modules can import them)."""

from __future__ import annotations

import pytest

from fleet_helpers import ECHO_ID, echo_collector


@pytest.fixture
def catalog():
    return {ECHO_ID: echo_collector()}


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """The fleet of lab_fixtures.FLEET served over real WinRM (HTTP, HTTPS) and SSH on loopback."""
    import paramiko
    from lab_fixtures import start_lab

    state = tmp_path_factory.mktemp("lab")
    key = paramiko.ECDSAKey.generate(bits=256)
    key_path = state / "client_ecdsa"
    key.write_private_key_file(str(key_path))
    server = start_lab(state, authorized_keys=[f"{key.get_name()} {key.get_base64()} fleet-tests"])
    server.client_key_path = key_path  # the key every lab account accepts
    try:
        yield server
    finally:
        server.stop()
