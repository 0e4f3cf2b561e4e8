"""Fixtures for est_service tests: the real crypto_service, the test EST server, est_service runs.

Three kinds of processes, all on loopback / Unix sockets:
* crypto_service (support.service.ServiceProcess), holding the device keys;
* the test EST server (support/est_server.py) on our OpenSSL with the default
  provider (ML-DSA TLS certificates, hybrid ML-KEM groups), steered by control.json;
* est_service itself (`python -m wvds.est_service`), in FIPS mode like a device.
The pytest process only inspects results (pyca/cryptography for certificates, the
Python client for keys in crypto_service).
"""
from __future__ import annotations

import signal

import pytest

from support.build import scons
from support.service import ServiceProcess, base_config, clib_path
from support.targets import HOST

from support.est import EstClient, EstServer, wvds_provider, write_wvds_openssl_cnf


@pytest.fixture(scope="session")
def est_fips_env(fips_envs):
    """This machine's FIPS environment (the session's one fipsinstall), for crypto_service and est_service."""
    if not clib_path(HOST).exists():
        pytest.fail(f"{clib_path(HOST)} missing: run 'scons' (./run test does)")
    return fips_envs.env(HOST)


@pytest.fixture(scope="session")
def wvds_openssl_cnf(est_fips_env, tmp_path_factory):
    """est_service's openssl.cnf with the wvds provider (TLS client authentication with the current
    certificate); wvds.so built by `scons provider` if it is not there yet."""
    if not wvds_provider().exists():
        scons("provider", HOST.arch, wvds_provider())
    return write_wvds_openssl_cnf(tmp_path_factory.mktemp("openssl-wvds") / "openssl-wvds.cnf", est_fips_env)


@pytest.fixture(scope="session")
def crypto(est_fips_env, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("crypto")
    cfg = base_config(workdir, log={"level": "info"})
    with ServiceProcess(HOST, est_fips_env, workdir, cfg) as svc:
        yield svc


@pytest.fixture(scope="session")
def make_est_server(tmp_path_factory):
    started = []

    def make(*args: str) -> EstServer:
        srv = EstServer(tmp_path_factory.mktemp("est-server"), *args).start()
        started.append(srv)
        return srv

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def est_server(make_est_server):
    """ML-DSA-65 CA, ML-DSA-65 TLS certificate, TLS 1.3 with the default groups."""
    return make_est_server()


@pytest.fixture
def make_client(tmp_path, est_fips_env, crypto, est_server):
    clients = []

    def make(algorithm: str = "ML-DSA-65", est: EstServer | None = None, name: str = "c", **overrides):
        """overrides: server={...} / certificate={...} merge into the config's server / certificate entry."""
        c = EstClient(tmp_path / name, est_fips_env, crypto, est or est_server, algorithm, **overrides)
        clients.append(c)
        return c

    yield make
    for c in clients:
        if c.proc is not None:
            c.stop_daemon(signal.SIGKILL)
    est_server.control()
