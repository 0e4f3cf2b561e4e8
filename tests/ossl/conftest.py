"""Session set-up for the wvds.ossl tests: a FIPS configuration made by fipsinstall, one worker process."""
import pytest

from ossl import _child
from support.fips import fipsinstall


@pytest.fixture(scope="session", autouse=True)
def fips_worker(tmp_path_factory):
    if not (_child.LIBDIR / "libcrypto.so.3").exists():
        pytest.fail(f"no OpenSSL build at {_child.LIBDIR}: run 'scons openssl' (./run test does)")
    workdir = tmp_path_factory.mktemp("ossl-fips")
    env = fipsinstall(_child.TARGET, workdir)
    _child.configure(env["OPENSSL_CONF"], env)
    yield
    _child.shutdown()
