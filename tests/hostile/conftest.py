"""Fixtures for the hostile-client tests: the real crypto_service (memory key store, from source)."""
from __future__ import annotations

import pytest

from support.service import ServiceProcess, base_config
from support.targets import HOST


@pytest.fixture
def start_service(fips_env, programs, tmp_path_factory):
    """start_service(**config overrides) -> a running ServiceProcess (log level info); stopped after the test."""
    started = []

    def start(**overrides) -> ServiceProcess:
        workdir = tmp_path_factory.mktemp("hostile")
        cfg = base_config(workdir, **{"log": {"level": "info"}, **overrides})
        svc = ServiceProcess(HOST, fips_env, workdir, cfg, programs=programs).start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()
        log = svc.log()
        assert "Traceback" not in log and "internal error" not in log, log[-4000:]
