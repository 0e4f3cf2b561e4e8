"""tests/binaries: our programs as delivered - the Nuitka binaries in build/<arch>/bin/ - for each
architecture selected with --arch (aarch64 runs under qemu-user).

Both architectures run everything here (--arch selects one), except NATIVE_ONLY. Under qemu-user
every service start pays the FIPS self-tests emulated (about 13 s), so the aarch64 half takes about
6 minutes here.

Every test module here runs once per architecture with support.binaries.current() pointing at that
architecture's binaries, so the service fixtures below and the test modules re-exported from
tests/service start the binary instead of `python -m ...`. The test process stays the host's
Python and reaches an aarch64 service through the same Unix socket and shared memory.
"""
from __future__ import annotations

import pytest

from service.conftest import client, make_service, service  # noqa: F401  (run against the binary, see below)
from support.binaries import binaries, use
from support.fips import fipsinstall
from support.service import clib_path
from support.targets import ARCHS, Target

# The key-store backends load this machine's SoftHSM module and tpm2-tss (x86_64 libraries); the
# aarch64 program cannot. The aarch64 build root has no SoftHSM or swtpm to offer instead.
NATIVE_ONLY = {"test_keystore_backends", "test_keystore_replay"}


def pytest_generate_tests(metafunc):
    if "programs" in metafunc.fixturenames:
        module = metafunc.module.__name__.rpartition(".")[2]
        archs = metafunc.config.getoption("arch") or list(ARCHS)
        if module in NATIVE_ONLY:
            archs = [a for a in archs if Target(a).native]
        metafunc.parametrize("programs", [binaries(a) for a in archs], ids=[f"{a}-binary" for a in archs],
                             indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def programs(request):
    """The binaries of one architecture; every program a test starts in this module is one of them."""
    p = request.param
    try:
        p.check_built()
    except FileNotFoundError as e:
        pytest.fail(str(e))
    if not clib_path(p.target).exists():
        pytest.fail(f"{clib_path(p.target)} missing: run 'scons' (./run test does)")
    with use(p):
        yield p


@pytest.fixture(scope="session")
def _fips_envs(tmp_path_factory):
    return {}


@pytest.fixture(scope="module")
def host_fips_env(programs, _fips_envs, tmp_path_factory):
    """FIPS configuration for the architecture under test (same name as in tests/service, so that the
    re-exported tests and fixtures use it)."""
    arch = programs.target.arch
    if arch not in _fips_envs:
        _fips_envs[arch] = fipsinstall(programs.target, tmp_path_factory.mktemp(f"fips-{arch}"))
    return _fips_envs[arch]
