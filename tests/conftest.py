import os
import shutil

import pytest

from support.other_uid import make_shared_dir
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


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        archs = metafunc.config.getoption("arch") or list(ARCHS)
        metafunc.parametrize("target", [Target(a) for a in archs], ids=archs, indirect=True, scope="module")


@pytest.fixture(scope="module")
def target(request) -> Target:
    t = request.param
    if not (t.openssl_root / "bin" / "openssl").exists():
        pytest.fail(f"no build for {t.arch} at {t.openssl_root}: run 'scons openssl' (./run test does)")
    return t


@pytest.fixture
def shared_dir():
    """A directory another uid can reach, with the client code and library (support/other_uid.py)."""
    d = make_shared_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)
