"""TpmKeyStore's TPM connection in-process (the FIPS worker) against swtpm: a TPM command's own error is
passed on as it is; only a broken link (a TSS layer error, a reset TPM) makes it connect again and retry."""
from __future__ import annotations

import pytest

from support import fips_process
from support.fips_process import in_fips_process

PARAMETER_SIZE = 0x1D5  # TPM_RC_SIZE on parameter 1: a bad command, the same on any link
TCTI_IO_ERROR = 0xA000A  # TSS2_TCTI_RC_IO_ERROR: the socket or device went away


@pytest.fixture(scope="module", autouse=True)
def fips_worker(fips_env):
    fips_process.configure(fips_env["OPENSSL_CONF"], fips_env)
    yield
    fips_process.shutdown()


def test_only_a_broken_link_reconnects(swtpm, tmp_path):
    check_reconnects(swtpm.tcti, str(tmp_path / "store"))


@in_fips_process
def check_reconnects(tcti: str, directory: str) -> None:
    from wvds.keystore.tpm import TpmKeyStore
    from wvds.tpm2.esys import TpmError
    store = TpmKeyStore({"backend": "tpm", "directory": directory, "tcti": tcti})
    try:
        calls = []

        def failing(rc):
            def fn():
                calls.append(store.ctx)
                if len(calls) == 1:
                    raise TpmError(rc, "Sign")
                return "retried"
            return fn

        with pytest.raises(TpmError):
            store.run(failing(PARAMETER_SIZE))
        assert len(calls) == 1 and store.ctx is calls[0]  # not retried, the connection kept
        calls.clear()
        assert store.run(failing(TCTI_IO_ERROR)) == "retried"
        assert len(calls) == 2 and calls[1] is not calls[0] and store.ctx is calls[1]  # a new connection
        assert store.primary is not None
    finally:
        store.close()
