"""Fixtures for the C client library tests; the helpers they use are in support/clib.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.clib import SERVICE_LIB, library
from support.targets import ARCHS, HOST, Target


def pytest_generate_tests(metafunc):
    if "arch" in metafunc.fixturenames:
        archs = metafunc.config.getoption("arch") or list(ARCHS)
        metafunc.parametrize("arch", archs, scope="module")


@pytest.fixture(scope="module")
def clib(arch) -> Path:
    return library(arch)


@pytest.fixture(scope="module")
def runner(arch) -> Target:
    """Runs programs built for `arch` (under qemu-user for aarch64). Not tests/conftest.py's `target`
    fixture: these tests do not need the OpenSSL build."""
    return Target(arch)


@pytest.fixture
def fake_service(tmp_path):
    from support.fake_service import FakeService
    service = FakeService(str(library(HOST.arch).parent / SERVICE_LIB), str(tmp_path / "crypto.sock"))
    yield service
    service.close()
