"""tests/keystore/test_backends.py against the x86_64 binaries: the file, TPM (swtpm, through the
machine's tpm2-tss, which the binaries do not bundle) and PKCS#11 (SoftHSMv2) backends compiled in.
Native only: the token and TPM libraries of this machine are x86_64."""
from keystore.conftest import backend, fips_env, softhsm, swtpm  # noqa: F401
from keystore.test_backends import *  # noqa: F401,F403
