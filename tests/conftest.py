import pytest

from support.targets import ARCHS, Target


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
