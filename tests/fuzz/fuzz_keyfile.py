"""Fuzz target: the key-file and store-header parsers of the persistent key stores (keystore/fileformat.py).

A damaged or tampered key file must be reported (FormatError, or a failed tag check) and skipped at
start-up, never stop the service: the directory store catches exactly FormatError/OSError per file,
so anything else escaping decode_key() would crash the start. The "KEK" here is a stand-in that
accepts everything (the parser, not AES-GCM, is under test), so inputs reach every metadata check.
Byte 0 picks: even = key file (expected id 0x01020304), odd = store.json header.

    python tests/fuzz/fuzz_keyfile.py tests/fuzz/corpus/keyfile
"""
from __future__ import annotations

import fuzzlib

import atheris

with atheris.instrument_imports(include=["wvds.keystore.fileformat"]):
    from wvds.keystore import fileformat as ff
    from wvds.keystore.kek import KekAuthError

STORE_ID = bytes(range(16))
EXPECTED_ID = 0x01020304


def open_any(aad: bytes, sealed: bytes) -> bytes:
    if len(sealed) < ff.NONCE_SIZE + ff.TAG_SIZE:
        raise KekAuthError("truncated")
    return sealed[ff.NONCE_SIZE:-ff.TAG_SIZE]


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    if data[0] % 2 == 0:
        try:
            rec = ff.decode_key(data[1:], STORE_ID, open_any, EXPECTED_ID)
        except (ff.FormatError, KekAuthError):
            return
        assert rec.key_id == EXPECTED_ID and isinstance(rec.label, str) and isinstance(rec.material, bytes)
    else:
        try:
            header = ff.parse_header(data[1:])
        except ff.FormatError:
            return
        ff.header_aad(header)
        bytes.fromhex(header["store_id"])


if __name__ == "__main__":
    fuzzlib.run(TestOneInput)
