"""Fuzz target: the parsers of scripts/extract_certs.py (the OEM certificate tool, standard library only).

The tool reads whatever file an OEM points it at: PEM (certificates, PKCS#7/CMS, other blocks),
DER (certificate, PKCS#7 SignedData, PKCS#12), base64 without armour. Its contract (its module
docstring): bad input is an InputError, reported as one line with exit status 1. The rest of the
input goes through `load()` and every certificate found through `describe()` (what `show` prints);
byte 0 odd makes PKCS#12 files go through the tool's standard-library reader (its fallback where
pyca/cryptography is not installed, with its own PBKDF2/AES-CBC/MAC code) instead of pyca's.
Password "fuzz". Anything but InputError is a crash.

    python tests/fuzz/fuzz_extract_certs.py tests/fuzz/corpus/extract_certs
"""
from __future__ import annotations

import datetime as dt
import sys

import fuzzlib

import atheris

sys.path.insert(0, str(fuzzlib.ROOT / "scripts"))
with atheris.instrument_imports(include=["extract_certs"]):
    import extract_certs as xc

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


class Password:
    def get(self) -> str:
        return "fuzz"


PASSWORD = Password()
PYCA_PKCS12 = xc._load_pkcs12


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    # odd: PKCS#12 as read where pyca/cryptography is not installed (the tool's own fallback)
    xc._load_pkcs12 = PYCA_PKCS12 if data[0] % 2 == 0 else xc._load_pkcs12_stdlib
    try:
        for cert in xc.load(data[1:], PASSWORD).certs:
            cert.describe(NOW)
    except xc.InputError:
        pass


if __name__ == "__main__":
    fuzzlib.run(TestOneInput)
