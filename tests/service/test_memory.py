"""After start-up the service hands its clean start-up pages back to the kernel (crypto_service/memory.py)
and goes on answering: the pages it needs again are read back from the files on their next access."""
import json

import pytest

from wvds.client import Client
from wvds.protocol.constants import Algorithm

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()


def test_startup_pages_are_released_and_the_service_still_works(make_service):
    svc = make_service()
    with Client(svc.socket) as c:
        aes = c.generate_key(Algorithm.AES_256_GCM).key_id
        sealed = c.encrypt(aes, b"after madvise")
        dsa = c.generate_key(Algorithm.ML_DSA_65).key_id
        sig = c.mldsa_sign(dsa, b"m")
        assert c.mldsa_verify(dsa, b"m", sig) and c.decrypt(aes, sealed) == b"after madvise"
        assert c.status()["fips"]["self_test_passed"] is True
    lines = [json.loads(line) for line in svc.log().splitlines() if '"start-up pages released"' in line]
    assert len(lines) == 1, svc.log()[-2000:]
    assert lines[0]["mappings_refused"] == 0  # Linux >= 5.4 (and qemu-user, which takes advice as a hint)
    # How much it frees is measured, not asserted (bench/memory.py): pages other processes map too (Debian's
    # libpython beside the test runner) stay, and under qemu-user the RSS is the emulator's.
    assert lines[0]["rss_kib_before"] > 0 and lines[0]["rss_kib_after"] > 0, lines[0]
