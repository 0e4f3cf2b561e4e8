"""Fixtures for tests against the real crypto_service (from source, x86_64 host Python)."""
from __future__ import annotations

import pytest

from support.fips import fipsinstall
from support.service import ServiceProcess, base_config, clib_path
from support.targets import HOST


@pytest.fixture(scope="session")
def host_fips_env(tmp_path_factory):
    if not clib_path(HOST).exists():
        pytest.fail(f"{clib_path(HOST)} missing: run 'scons' (./run test does)")
    return fipsinstall(HOST, tmp_path_factory.mktemp("fips-host"))


@pytest.fixture(scope="module")
def service(host_fips_env, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("svc")
    with ServiceProcess(HOST, host_fips_env, workdir, base_config(workdir)) as svc:
        yield svc


@pytest.fixture
def make_service(host_fips_env, tmp_path_factory):
    """Start extra services with their own config: make_service(limits={...})."""
    started = []

    def make(**overrides) -> ServiceProcess:
        workdir = tmp_path_factory.mktemp("svc")
        svc = ServiceProcess(HOST, host_fips_env, workdir, base_config(workdir, **overrides)).start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()


@pytest.fixture
def client(service):
    from wvds.client import Client
    with Client(service.socket) as c:
        yield c
