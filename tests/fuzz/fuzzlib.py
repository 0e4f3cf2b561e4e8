"""Plumbing shared by the atheris harnesses (fuzz_*.py) and the corpus generator.

Each harness is a script: `python tests/fuzz/fuzz_<target>.py [libFuzzer flags] [corpus dirs | files]`.
With directories it fuzzes (new inputs are added to the first directory); with files it runs each
file once (that is how crash regressions are replayed). The harness that needs OpenSSL
(fuzz_request.py) must run with the FIPS environment: LD_LIBRARY_PATH=<repo>/build/x86_64/openssl/lib,
OPENSSL_CONF and OPENSSL_MODULES from `openssl fipsinstall` (tests/support/fips.py makes them).

Nothing here imports atheris at module level, so the corpus generator and the tests can use the
constants (e.g. the fixed key ids of the request harness) without it.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"
for p in (str(ROOT / "src"), str(ROOT / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

# --- the request harness's fixed world (fuzz_request.py, make_corpus.py) --------------------------------
OWNER_UID, STRANGER_UID, GRANTEE_UID = 1000, 2000, 3000
PEERS = (OWNER_UID, STRANGER_UID, GRANTEE_UID)  # input byte 0 (mod 3) picks who sends the frame
SHARED_LABEL = "shared"  # the config grants GRANTEE_UID verify/encrypt/encaps on the owner's keys with this label
FIRST_ID = 0x101
# (algorithm id, usage bits, label, format id, material): imported in this order as ids FIRST_ID, FIRST_ID+1, ...
# Fixed material, so the corpus can carry valid ciphertexts and signatures for these keys.
BASE_KEYS = (
    (0x01, 0x0003, "aes", 0x00, bytes([0x41]) * 32),             # 0x101 AES-256-GCM encrypt|decrypt
    (0x01, 0x0103, "aes-replay", 0x00, bytes([0x42]) * 32),      # 0x102 + REPLAY_PROTECT
    (0x01, 0x0081, "aes-enc-export", 0x00, bytes([0x43]) * 32),  # 0x103 encrypt only, EXPORTABLE
    (0x10, 0x000C, SHARED_LABEL, 0x01, bytes([0x44]) * 32),      # 0x104 ML-DSA-44 (granted: verify)
    (0x11, 0x008C, "mldsa65-export", 0x01, bytes([0x45]) * 32),  # 0x105 ML-DSA-65 EXPORTABLE
    (0x12, 0x000C, "mldsa87", 0x01, bytes([0x46]) * 32),         # 0x106 ML-DSA-87
    (0x20, 0x0070, "mlkem512-release", 0x01, bytes([0x47]) * 64),  # 0x107 ML-KEM-512 + RELEASE_SECRET
    (0x21, 0x0030, SHARED_LABEL, 0x01, bytes([0x48]) * 64),      # 0x108 ML-KEM-768 (granted: encaps)
    (0x22, 0x0030, "mlkem1024", 0x01, bytes([0x49]) * 64),       # 0x109 ML-KEM-1024
    (0x30, 0x000C, SHARED_LABEL, 0x00, bytes([0x11]) * 32),      # 0x10a ECDSA P-256 (granted: verify)
    (0x31, 0x008C, "p384-export", 0x00, bytes([0x22]) * 48),     # 0x10b ECDSA P-384 EXPORTABLE
    (0x01, 0x0003, SHARED_LABEL, 0x00, bytes([0x4A]) * 32),      # 0x10c AES (granted: encrypt)
)
BASE_IDS = tuple(range(FIRST_ID, FIRST_ID + len(BASE_KEYS)))
GRANTED_USAGE = ["verify", "encrypt", "encaps"]


def base_key_id(label_or_index) -> int:
    return FIRST_ID + label_or_index


def run(test_one_input) -> None:
    """Hand the harness to libFuzzer (atheris) with this process's argv."""
    import atheris
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
