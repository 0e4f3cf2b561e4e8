"""tests/keystore/test_replay_restart.py against the x86_64 binaries (native only, like test_keystore_backends:
the TPM and token libraries of this machine are x86_64; the aarch64 binaries restart on the file store in
test_service_replay.py)."""
from keystore.conftest import backend, fips_env, softhsm, swtpm  # noqa: F401
from keystore.test_replay_restart import *  # noqa: F401,F403
