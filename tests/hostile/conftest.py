"""Fixtures for the hostile-client tests: the real crypto_service (memory key store, from source)."""
from __future__ import annotations

import pytest

from support.fips import fipsinstall
from support.service import ServiceProcess, base_config, clib_path
from support.targets import HOST


@pytest.fixture(scope="session")
def hostile_fips_env(tmp_path_factory):
    if not clib_path(HOST).exists():
        pytest.fail(f"{clib_path(HOST)} missing: run 'scons' (./run test does)")
    return fipsinstall(HOST, tmp_path_factory.mktemp("fips-hostile"))


@pytest.fixture
def start_service(hostile_fips_env, tmp_path_factory):
    """start_service(**config overrides) -> a running ServiceProcess (log level info); stopped after the test."""
    started = []

    def start(**overrides) -> ServiceProcess:
        workdir = tmp_path_factory.mktemp("hostile")
        cfg = base_config(workdir, **{"log": {"level": "info"}, **overrides})
        svc = ServiceProcess(HOST, hostile_fips_env, workdir, cfg).start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()
        log = svc.log()
        assert "Traceback" not in log and "internal error" not in log, log[-4000:]
