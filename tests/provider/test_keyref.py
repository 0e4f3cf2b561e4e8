"""The key reference file: what wvds-keyref writes, and what the provider accepts and refuses.

The format is checked against an independent encoder (prov_support.keyref_der), so the C code
and docs/provider.md describe the same bytes.
"""
from __future__ import annotations

import pytest

from support.targets import HOST

from .conftest import keyref_tool
from .prov_support import (ALGORITHMS, assert_clean_failure, keyref_der, keyref_from_pem, keyref_pem, openssl,
                           openssl_env)


def test_tool_writes_the_documented_format(service, make_device_key, tmp_path):
    device = make_device_key(service, "ML-DSA-65")
    text = device.ref.read_text()
    assert "PRIVATE" not in text and text.count("-----BEGIN WVDS KEY REFERENCE-----") == 1
    assert text.splitlines()[0].startswith("WvdS crypto_service key reference (no key material)")
    assert keyref_from_pem(text) == keyref_der(device.key_id, "ML-DSA-65", service.socket)
    # Writing a reference for an existing key gives the same file.
    again = tmp_path / "again.pem"
    keyref_tool(f"0x{device.key_id:08x}", "--out", str(again), socket=service.socket)
    assert again.read_text() == text
    # Without --out it goes to stdout.
    assert keyref_tool(str(device.key_id), socket=service.socket).stdout == text


def test_tool_refuses_what_is_not_a_signing_key(service):
    from wvds.client import Client
    from wvds.protocol.constants import Algorithm
    with Client(service.socket) as c:
        others = [c.generate_key(Algorithm.AES_256_GCM).key_id, c.mlkem_keygen(Algorithm.ML_KEM_768).key_id]
    for key_id in others:
        r = keyref_tool(str(key_id), socket=service.socket, check=False)
        assert r.returncode == 1 and "is not a signature key" in r.stderr, r.stderr
    r = keyref_tool("0x7fffffff", socket=service.socket, check=False)  # ids are random: this one is free
    assert r.returncode == 1 and "WVDS_KEY_NOT_FOUND" in r.stderr
    r = keyref_tool("1", socket=service.socket + ".nothere", check=False)
    assert r.returncode == 1 and "WVDS_ERR_CONNECT" in r.stderr
    for args in ([], ["0"], ["--generate", "RSA-2048"], ["1", "--generate", "ML-DSA-44"], ["1", "--label", "x"],
                 ["-5"], ["0x100000000"]):
        assert keyref_tool(*args, socket=service.socket, check=False).returncode == 2, args


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_loads_with_its_openssl_key_type(service, make_device_key, client_cnfs, algorithm):
    device = make_device_key(service, algorithm)
    r = openssl(client_cnfs(HOST.arch), "pkey", "-in", str(device.ref), "-text_pub", "-noout")
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    if algorithm.startswith("ML-DSA"):
        assert f"{algorithm} Public-Key:" in out, out
    else:
        assert f"NIST CURVE: P-{algorithm[-3:]}" in out, out


def test_malformed_references_are_refused_with_the_reason(service, make_device_key, client_cnfs, tmp_path):
    cnf = client_cnfs(HOST.arch)
    device = make_device_key(service, "ECDSA-P256")
    key_id, sock = device.key_id, service.socket
    bad = {
        "trailing byte": keyref_der(key_id, "ECDSA-P256", sock) + b"\0",
        "trailing element": keyref_der(key_id, "ECDSA-P256", sock, extra=b"\x0c\x01x"),
        "unknown format": keyref_der(key_id, "ECDSA-P256", sock, fmt="WVDS-KEYREF-2"),
        "unknown algorithm": keyref_der(key_id, "ECDSA-P521", sock),
        "key id 0": keyref_der(0, "ECDSA-P256", sock),
        "key id too large": keyref_der(1 << 32, "ECDSA-P256", sock),
        "non-minimal key id": keyref_der(0, "ECDSA-P256", sock, integer=b"\0\0" + key_id.to_bytes(4, "big")),
        "negative key id": keyref_der(0, "ECDSA-P256", sock, integer=b"\x80\0\0\x01"),
        "empty socket": keyref_der(key_id, "ECDSA-P256", ""),
        "socket too long": keyref_der(key_id, "ECDSA-P256", "/" + "s" * 107),
        "socket with NUL": keyref_der(key_id, "ECDSA-P256", sock + "\0x"),
    }
    path = tmp_path / "bad.pem"
    for what, der in bad.items():
        path.write_text(keyref_pem(der))
        r = openssl(cnf, "pkey", "-in", str(path), "-pubout")
        assert r.returncode == 1 and b"malformed WVDS key reference" in r.stderr, (what, r.stderr)
    # The same bytes as DER (-keyform DER) go through the DER step alone.
    path.write_bytes(keyref_der(key_id, "ECDSA-P256", sock))
    r = openssl(cnf, "pkey", "-in", str(path), "-inform", "DER", "-pubout")
    assert r.returncode == 0 and b"BEGIN PUBLIC KEY" in r.stdout, r.stderr
    # A reference whose algorithm is not the key's: the service's word wins.
    path.write_text(keyref_pem(keyref_der(key_id, "ECDSA-P384", sock)))
    assert_clean_failure(openssl(cnf, "pkey", "-in", str(path), "-pubout"),
                         "does not match its reference", "the reference says ECDSA-P384")
    # Without a socket the library's default applies ($WVDS_SOCKET here).
    path.write_text(keyref_pem(keyref_der(key_id, "ECDSA-P256", None)))
    r = HOST.run(HOST.openssl_root / "bin" / "openssl", "pkey", "-in", str(path), "-pubout", check=False,
                 env=openssl_env(HOST, cnf, WVDS_SOCKET=sock))
    assert r.returncode == 0 and b"BEGIN PUBLIC KEY" in r.stdout, r.stderr
