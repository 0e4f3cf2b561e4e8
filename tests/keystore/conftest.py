"""Key-store tests run the REAL service with each persistent backend: the file backend with a device secret,
the TPM backend against swtpm, the PKCS#11 backend against SoftHSMv2 - all started here, none mocked.
The backends themselves are in support/keystore_backends.py."""
from __future__ import annotations

import pytest

from support.keystore_backends import BACKENDS, Backend, make_backend
from support.softhsm import PIN, TOKEN_LABEL, SoftHsm
from support.tpm import Swtpm


@pytest.fixture(scope="session")
def swtpm(tmp_path_factory):
    with Swtpm(tmp_path_factory.mktemp("swtpm")) as tpm:
        yield tpm


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    hsm = SoftHsm(tmp_path_factory.mktemp("softhsm"))
    hsm.init_token(TOKEN_LABEL, PIN)
    return hsm


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, fips_env, programs) -> Backend:
    """Each backend in turn, for the sources or (modules marked binaries) the binary under test."""
    return make_backend(request.param, request, tmp_path, fips_env, programs)
