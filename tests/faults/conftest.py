"""Fixtures for fault-injection tests: a FIPS environment and a restartable service on the file key store."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.service import RestartableService, base_config, clib_path, file_keystore
from support.targets import HOST


@pytest.fixture(scope="session")
def faults_fips_env(fips_envs):
    """The host's FIPS environment (tests/conftest.py's fips_envs; session-wide like the tests using it)."""
    if not clib_path(HOST).exists():
        pytest.fail(f"{clib_path(HOST)} missing: run 'scons' (./run test does)")
    return fips_envs.env(HOST)


@pytest.fixture
def file_service(faults_fips_env, tmp_path):
    """file_service(directory=None, **config overrides) -> a not yet started RestartableService (file key store)."""
    made = []

    def make(directory: Path | None = None, extra_env: dict | None = None, **overrides) -> RestartableService:
        cfg = base_config(tmp_path, keystore=file_keystore(tmp_path, directory), log={"level": "info"}, **overrides)
        svc = RestartableService(HOST, faults_fips_env, tmp_path, cfg, extra_env=extra_env)
        made.append(svc)
        return svc

    yield make
    for svc in made:
        if svc.proc is not None:
            svc.stop(timeout=30)
