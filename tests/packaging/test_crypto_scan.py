"""No crypto library in the delivery but our OpenSSL 3.6.3: the scan the binaries' assembly and the
delivery build run (packaging/crypto_scan.py), on foreign libraries made up here and on the real build."""
from __future__ import annotations

from pathlib import Path

import crypto_scan
import delivery
import pytest

from support.targets import BUILD

ELF = b"\x7fELF\x02\x01\x01" + bytes(9)


@pytest.mark.parametrize("name,data,what", [
    ("bin/x86_64/cryptography/hazmat/bindings/_rust.so", ELF + b"...OPENSSLDIR: \"/usr/local/ssl\"\0",
     "contains an OpenSSL libcrypto"),
    ("lib/x86_64/libcrypto.so.3", ELF + b"OPENSSLDIR: x\0OpenSSL 3.0.13 30 Jan 2024\0", "OpenSSL 3.0.13"),
    ("bin/aarch64/_sodium.so", ELF + b"\0sodium_init\0", "libsodium"),
    ("bin/aarch64/libfoo.so", ELF + b"\0BoringSSL\0", "BoringSSL"),
    ("bin/x86_64/wvds", ELF + b"\0ring_core_0_17_8_aes_hw_encrypt\0", "ring (Rust)"),
    ("bin/x86_64/_cffi_backend.so", ELF + b"PyInit__cffi_backend\0", "cffi"),
    ("bin/x86_64/tpm2_pytss/_libtpm2_pytss.so", ELF + b"PyInit__libtpm2_pytss\0", "tpm2-pytss"),
    ("bin/x86_64/liboqs.so.9", ELF + b"OQS_SIG_new\0", "liboqs"),
])
def test_foreign_crypto_is_found(name, data, what):
    found = crypto_scan.findings(name, data)
    assert found and any(what in f for f in found), found
    with pytest.raises(RuntimeError, match="another crypto library"):
        delivery.refuse_foreign_crypto([delivery.Entry(name, data=data)])


@pytest.mark.parametrize("name,data", [
    ("README_OEM.md", b"We ship no BoringSSL, libsodium or OPENSSLDIR: of another OpenSSL 1.1.1 "),
    ("bin/x86_64/wvds", ELF + b"Example: OpenSSL 3.2.1 30 Jan 2024\n"),  # the ssl module's docstring
    ("lib/x86_64/libcrypto.so.3", ELF + b"OPENSSLDIR: \"/opt/wvds/ssl\"\0OpenSSL 3.6.3 9 Jun 2026\0"),
    ("bin/x86_64/wvds", ELF + b"libbotan\0_cffi_backend\0tpm2_pytss\0libsodium\0"),  # the self-check's lists
])
def test_what_is_not_a_foreign_library(name, data):
    assert crypto_scan.findings(name, data) == []
    delivery.refuse_foreign_crypto([delivery.Entry(name, data=data)])


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_build_holds_no_other_crypto_library(arch):
    """The assembled programs (and our OpenSSL, which must pass as ours) - where they are built."""
    folders = [BUILD / arch / d for d in ("bin", "clib", "provider", "openssl/lib")]
    if not (BUILD / arch / "bin").is_dir():
        pytest.skip(f"no binaries built for {arch}")
    assert crypto_scan.scan_paths([f for f in folders if f.is_dir()]) == []
    assert crypto_scan.findings("libcrypto.so.3", Path(BUILD / arch / "openssl/lib/libcrypto.so.3").read_bytes()) == []
