"""Session set-up for the wvds.ossl tests: the session's x86_64 FIPS configuration, one worker process."""
import pytest

from support import fips_process


@pytest.fixture(scope="session", autouse=True)
def fips_worker(fips_envs, tmp_path_factory):
    if not (fips_process.LIBDIR / "libcrypto.so.3").exists():
        pytest.fail(f"no OpenSSL build at {fips_process.LIBDIR}: run 'scons openssl' (./run test does)")
    env = fips_envs.env(fips_process.TARGET)
    fips_process.configure(env["OPENSSL_CONF"], env, tmp_path_factory.mktemp("ossl-scratch"))
    yield
    fips_process.shutdown()
