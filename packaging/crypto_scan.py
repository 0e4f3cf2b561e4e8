"""No crypto library in the delivery but ours: a scan of every delivered file's bytes.

The product's only cryptography is OpenSSL 3.6.3 with its FIPS provider (lib/<arch>/,
and its byte-identical copies beside the programs). A second library - a wheel's
statically linked OpenSSL (pyca/cryptography's _rust.so carries one), BoringSSL,
LibreSSL, libsodium, a Rust crypto crate, liboqs - would put unvalidated crypto into
the programs; the build fails if any delivered file contains one.

What is looked for, in every ELF file and Python file (documentation may name
libraries freely): an OpenSSL libcrypto anywhere but in libcrypto.so.3 (every libcrypto,
static or shared, embeds "OPENSSLDIR: " for OpenSSL_version()), a libcrypto.so.3 of
another version than ours (its "OpenSSL X.Y.Z" text; docstrings quoting versions, as
Python's ssl module's do, are not a library and carry no OPENSSLDIR), and marker strings
other libraries embed in their code or symbol table (their name, an exported symbol,
a Python extension's init function) - chosen so that a list of names, as the
self-check's, does not match. Compressed members are not looked into: the delivery has none.

    python packaging/crypto_scan.py FILE|DIR...     # prints the findings, exit 1 if any
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

OURS = b"3.6.3"
LIBCRYPTO = "libcrypto.so.3"
_LIBCRYPTO_MARK = b"OPENSSLDIR: "
_OPENSSL_VERSION = re.compile(rb"OpenSSL (\d+\.\d+\.\d+[a-z]?)[ \x00]")
_ELF = b"\x7fELF"
_PYTHON = (".py", ".pyc")
MARKERS = {
    b"BoringSSL": "BoringSSL",
    b"LibreSSL": "LibreSSL",
    b"AWS-LC": "AWS-LC",
    b"wolfSSL_Init": "wolfSSL",
    b"sodium_init": "libsodium",
    b"mbedtls_": "Mbed TLS",
    b"gnutls_global_init": "GnuTLS",
    b"gcry_check_version": "libgcrypt",
    b"nettle_sha256_init": "Nettle",
    b"NSS_Init": "NSS",
    b"_ZN5Botan": "Botan",
    b"ring_core_": "ring (Rust)",
    b"cryptography_rust": "pyca/cryptography (Rust)",
    b"PyInit__cffi_backend": "cffi (pyca/cryptography's bindings)",
    b"OQS_SIG_new": "liboqs",
    b"PyInit__libtpm2_pytss": "tpm2-pytss (imports pyca/cryptography)",
}


def scanned(name: str, data: bytes) -> bool:
    """Code: ELF files and Python files. Documents and data are not scanned."""
    return data.startswith(_ELF) or name.endswith(_PYTHON)


def findings(name: str, data: bytes) -> list[str]:
    """What in this file is a crypto library other than ours ([] for a file that is not code)."""
    if not scanned(name, data):
        return []
    out = []
    if _LIBCRYPTO_MARK in data:
        if name.rsplit("/", 1)[-1] != LIBCRYPTO:
            out.append(f"{name}: contains an OpenSSL libcrypto")
        for m in sorted(set(_OPENSSL_VERSION.findall(data))):
            if m != OURS:
                out.append(f"{name}: contains OpenSSL {m.decode()} (ours is {OURS.decode()})")
    for marker, what in MARKERS.items():
        if marker in data:
            out.append(f"{name}: contains {what} ({marker.decode()!r})")
    return out


def scan_paths(paths: list[Path]) -> list[str]:
    out = []
    for top in paths:
        for p in sorted(top.rglob("*")) if top.is_dir() else [top]:
            if p.is_file() and not p.is_symlink():
                out += findings(str(p), p.read_bytes())
    return out


def main(argv: list[str]) -> int:
    problems = scan_paths([Path(a) for a in argv])
    print("\n".join(problems) or "no crypto library but OpenSSL 3.6.3")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
