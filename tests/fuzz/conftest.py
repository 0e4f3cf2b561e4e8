"""Fixtures for the fuzz tests: the FIPS environment the request harness runs in."""
from __future__ import annotations

import pytest

from support.targets import HOST


@pytest.fixture(scope="session")
def fuzz_fips_env(fips_envs) -> dict[str, str]:
    """OPENSSL_CONF/OPENSSL_MODULES from the session's fipsinstall (fips_envs) and LD_LIBRARY_PATH for our OpenSSL."""
    if not (HOST.openssl_root / "bin" / "openssl").exists():
        pytest.fail(f"no OpenSSL build at {HOST.openssl_root}: run 'scons openssl' (./run test does)")
    env = fips_envs.env(HOST)
    return {**env, "LD_LIBRARY_PATH": str(HOST.openssl_root / "lib")}
