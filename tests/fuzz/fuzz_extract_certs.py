"""Fuzz target: the parsers of scripts/extract_certs.py (the OEM certificate tool).

The tool reads whatever file an OEM points it at: PEM (certificates, PKCS#7/CMS, other blocks),
DER (certificate, PKCS#7 SignedData, PKCS#12), base64 without armour. Its contract (its module
docstring): bad input is an InputError, reported as one line with exit status 1. The rest of the
input goes through `load()` and every certificate found through `describe()` (what `show` prints).
The tool reads a PKCS#12 file's structure itself and leaves its MAC and encryption to `openssl
pkcs12` or pyca/cryptography: byte 0 odd hands them to this build's openssl (the tool then parses
openssl's output), even to pyca/cryptography. Password "fuzz". Anything but InputError is a crash.

    python tests/fuzz/fuzz_extract_certs.py tests/fuzz/corpus/extract_certs
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import sys

import fuzzlib

import atheris

sys.path.insert(0, str(fuzzlib.ROOT / "scripts"))
with atheris.instrument_imports(include=["extract_certs"]):
    import extract_certs as xc

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
OPENSSL = str(fuzzlib.ROOT / "build" / platform.machine() / "openssl" / "bin" / "openssl")
assert os.access(OPENSSL, os.X_OK), f"{OPENSSL} is missing: build it first (scons openssl)"


class Password:
    def get(self) -> str:
        return "fuzz"


PASSWORD = Password()


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    try:
        for cert in xc.load(data[1:], PASSWORD, OPENSSL if data[0] % 2 else "none").certs:
            cert.describe(NOW)
    except xc.InputError:
        pass


if __name__ == "__main__":
    fuzzlib.run(TestOneInput)
