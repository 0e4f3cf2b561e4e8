"""Fixtures for the fuzz tests: the FIPS environment the request harness runs in."""
from __future__ import annotations

import pytest

from support.fips import fipsinstall
from support.targets import HOST


@pytest.fixture(scope="session")
def fuzz_fips_env(tmp_path_factory) -> dict[str, str]:
    """OPENSSL_CONF/OPENSSL_MODULES from `openssl fipsinstall` and LD_LIBRARY_PATH for our OpenSSL 3.6.3."""
    if not (HOST.openssl_root / "bin" / "openssl").exists():
        pytest.fail(f"no OpenSSL build at {HOST.openssl_root}: run 'scons openssl' (./run test does)")
    env = fipsinstall(HOST, tmp_path_factory.mktemp("fips-fuzz"))
    return {**env, "LD_LIBRARY_PATH": str(HOST.openssl_root / "lib")}
