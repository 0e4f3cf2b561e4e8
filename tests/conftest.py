import os
import shutil

import pytest

from support.binaries import SOURCE, Programs, programs_under_test
from support.fips import FipsEnvironments
from support.other_uid import make_shared_dir
from support.service import ServiceProcess, base_config, clib_path
from support.targets import ARCHS, DEFAULT_OPENSSL_CONF, HOST, Target

# Hermetic: whatever the tests start without an explicit configuration reads OpenSSL's defaults, not
# the machine's (an installed delivery's FIPS-only configuration is our OpenSSL's OPENSSLDIR), and
# scripts that look for an `openssl` (scripts/extract_certs.py) find this build's, not /opt/wvds/bin's.
# tests/packaging/test_installed_machine.py runs a slice of the suite beside an installed delivery.
os.environ["OPENSSL_CONF"] = str(DEFAULT_OPENSSL_CONF)
os.environ.pop("OPENSSL_MODULES", None)
os.environ["WVDS_OPENSSL"] = str(HOST.openssl_root / "bin" / "openssl")


def pytest_addoption(parser):
    parser.addoption("--arch", action="append", choices=ARCHS,
                     help="architecture(s) whose build to test (default: all)")
    parser.addoption("--l4re", action="store_true",
                     help="also run the tests marked l4re (they need `scons l4re`; ./run test --l4re does both)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "binaries(source=True, native_only=False): the module's tests run once per program build "
        "(`programs`): from source unless source=False, then the Nuitka binary of each --arch (only the native "
        "one if native_only); ids source, x86_64-binary, aarch64-binary")
    config.addinivalue_line(
        "markers", "l4re: boots the L4Re build (scons l4re) in QEMU; skipped unless --l4re (docs/l4re.md)")


L4RE_SKIP = "L4Re is built and booted only by ./run test --l4re"


def pytest_collection_modifyitems(config, items):
    # the L4Re build takes half an hour cold: outside the default run (CI's budget), on request only
    if config.getoption("l4re"):
        return
    for item in items:
        if item.get_closest_marker("l4re"):
            item.add_marker(pytest.mark.skip(reason=L4RE_SKIP))


def pytest_generate_tests(metafunc):
    archs = metafunc.config.getoption("arch") or list(ARCHS)
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", [Target(a) for a in archs], ids=archs, indirect=True, scope="module")
    mark = metafunc.definition.get_closest_marker("binaries")
    if mark and "programs" in metafunc.fixturenames:
        under_test = programs_under_test(archs, **mark.kwargs)
        metafunc.parametrize("programs", under_test, ids=[p.name for p in under_test], indirect=True, scope="module")


@pytest.fixture(scope="module")
def target(request) -> Target:
    t = request.param
    if not (t.openssl_root / "bin" / "openssl").exists():
        pytest.fail(f"no build for {t.arch} at {t.openssl_root}: run 'scons openssl' (./run test does)")
    return t


@pytest.fixture(scope="module")
def programs(request) -> Programs:
    """The programs the module's services and tools run as: SOURCE, or (modules marked binaries) in turn
    the sources and each architecture's binaries."""
    p = getattr(request, "param", SOURCE)
    try:
        p.check_built()
    except FileNotFoundError as e:
        pytest.fail(str(e))
    if not clib_path(p.target).exists():
        pytest.fail(f"{clib_path(p.target)} missing: run 'scons' (./run test does)")
    return p


@pytest.fixture(scope="session")
def fips_envs(tmp_path_factory) -> FipsEnvironments:
    """fips_envs.env(arch): the FIPS environment of an architecture, one fipsinstall per session."""
    return FipsEnvironments(tmp_path_factory.mktemp("fips"))


@pytest.fixture(scope="module")
def fips_env(programs, fips_envs) -> dict[str, str]:
    """The FIPS environment of the architecture the programs under test run on."""
    return fips_envs.env(programs.target)


@pytest.fixture(scope="module")
def service(programs, fips_env, tmp_path_factory):
    """A crypto_service (memory key store) shared by the module's tests."""
    workdir = tmp_path_factory.mktemp("svc")
    with ServiceProcess(HOST, fips_env, workdir, base_config(workdir), programs=programs) as svc:
        yield svc


@pytest.fixture
def make_service(programs, fips_env, tmp_path_factory):
    """Start extra services with their own config: make_service(limits={...})."""
    started = []

    def make(**overrides) -> ServiceProcess:
        workdir = tmp_path_factory.mktemp("svc")
        svc = ServiceProcess(HOST, fips_env, workdir, base_config(workdir, **overrides), programs=programs).start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()


@pytest.fixture
def client(service):
    """A client of the module's service; its calls wait 10 s, or 120 s for a service under qemu-user (about
    twenty times slower: an SLH-DSA "f" signature takes seconds there, more on a busy machine)."""
    from wvds.client import Client
    with Client(service.socket, timeout_ms=10_000 if service.programs.target.native else 120_000) as c:
        yield c


@pytest.fixture
def shared_dir():
    """A directory another uid can reach, with the client code and library (support/other_uid.py)."""
    d = make_shared_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)
