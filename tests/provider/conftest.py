"""Fixtures for the wvds OpenSSL provider tests.

Processes, all on this machine: crypto_service (host, FIPS) holding the device keys; two TLS 1.3
servers requiring client certificates, OpenSSL s_server and tls_peer.py (Python ssl), both on our
OpenSSL 3.6 in FIPS mode and without the provider; and the clients under test, which load wvds.so
through an openssl.cnf written as docs/provider.md says: openssl s_client / req / pkey of each
architecture (aarch64 under qemu-user, talking to the x86_64 service over the same shared memory)
and tls_peer.py client (host Python, the way est_service uses it).
"""
from __future__ import annotations

import re
import subprocess

import pytest

from support.build import scons
from support.service import ServiceProcess, base_config, clib_path
from support.targets import HOST

from .prov_support import DeviceKey, Pki, Server, provider_dir, public_key_from_raw, write_cnf

def build(arch: str) -> None:
    """build/<arch>/provider/, brought up to date by `scons provider` once per session."""
    scons("provider", arch, provider_dir(arch) / "wvds.so")


@pytest.fixture(scope="session")
def fips_dirs(fips_envs):
    """fips_dirs(arch): (the directory with arch's fipsmodule.cnf, its FIPS environment), from fips_envs."""
    return lambda arch: (fips_envs.dir(arch), fips_envs.env(arch))


@pytest.fixture(scope="session")
def host_fips_env(fips_dirs):
    if not clib_path(HOST).exists():
        pytest.fail(f"{clib_path(HOST)} missing: run 'scons' (./run test does)")
    build(HOST.arch)
    return fips_dirs(HOST.arch)[1]


@pytest.fixture(scope="session")
def service(host_fips_env, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("svc")
    with ServiceProcess(HOST, host_fips_env, workdir, base_config(workdir, log={"level": "info"})) as svc:
        yield svc


@pytest.fixture
def make_service(host_fips_env, tmp_path_factory):
    """Another crypto_service of its own, for tests that stop it."""
    started = []

    def make() -> ServiceProcess:
        workdir = tmp_path_factory.mktemp("svc-extra")
        svc = ServiceProcess(HOST, host_fips_env, workdir, base_config(workdir, log={"level": "info"})).start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def keyref_tool(*args: str, socket: str, check: bool = True) -> subprocess.CompletedProcess:
    """The host wvds-keyref (it finds the client library through its build-tree rpath)."""
    r = subprocess.run([str(provider_dir(HOST.arch) / "wvds-keyref"), "--socket", socket, *args],
                       capture_output=True, text=True, env=HOST.env())
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="session")
def make_device_key(pki, tmp_path_factory):
    """make_device_key(service, algorithm): a new key in that service, its reference file (written
    by wvds-keyref --generate) and a certificate for it from the test CA."""
    from wvds.client import Client
    from wvds.protocol.constants import Algorithm
    workdir = tmp_path_factory.mktemp("devices")
    count = iter(range(1, 1000))

    def make(svc: ServiceProcess, algorithm: str) -> DeviceKey:
        cn = f"device-{algorithm.lower()}-{next(count)}"
        ref = workdir / f"{cn}.ref.pem"
        keyref_tool("--generate", algorithm, "--label", cn, "--out", str(ref), socket=svc.socket)
        key_id = int(re.search(r"key 0x([0-9a-f]{8})", ref.read_text()).group(1), 16)
        with Client(svc.socket) as c:
            exported = c.export_public(key_id)
        assert exported.algorithm == Algorithm[algorithm.replace("-", "_")]
        cert = pki.issue(public_key_from_raw(algorithm, exported.public_key), cn)
        return DeviceKey(algorithm, key_id, exported.public_key, ref, cert, cn)

    return make


@pytest.fixture(scope="session")
def devices(service, make_device_key):
    """The two device keys of the TLS tests, in the shared service."""
    return {alg: make_device_key(service, alg) for alg in ("ML-DSA-65", "ECDSA-P256")}


@pytest.fixture(scope="session")
def servers(host_fips_env, pki, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("servers")
    env = dict(host_fips_env, LD_LIBRARY_PATH=str(HOST.openssl_root / "lib"))
    started = {kind: Server(kind, pki, env, workdir) for kind in ("s_server", "py_server")}
    yield started
    for s in started.values():
        s.stop()


@pytest.fixture(scope="session")
def client_cnfs(fips_dirs, tmp_path_factory):
    """client_cnfs(arch, fips=True): openssl.cnf loading that architecture's wvds.so."""
    workdir = tmp_path_factory.mktemp("cnf")

    def get(arch: str, fips: bool = True):
        build(arch)
        path = workdir / f"{arch}-{'fips' if fips else 'default'}.cnf"
        if not path.exists():
            write_cnf(path, arch, fips_dirs(arch)[0] if fips else None)
        return path

    return get


@pytest.fixture(scope="module")
def built(target):
    build(target.arch)
    return provider_dir(target.arch)

