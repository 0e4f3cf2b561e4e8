"""SLH-DSA keys held by crypto_service through the wvds provider: `openssl pkeyutl` signs and verifies
with a key reference (pure SLH-DSA, with and without a context string) and `openssl req` makes a CSR
whose signature OpenSSL's own SLH-DSA (FIPS provider) verifies; each signature is also checked by
liboqs, another implementation (docs/conformance.md)."""
from __future__ import annotations

import re

import pytest

from support.liboqs import load
from support.targets import HOST
from wvds.client import Client

from .conftest import keyref_tool
from .prov_support import openssl

# (algorithm, liboqs name, arc of its OID 2.16.840.1.101.3.4.3.<arc>): a fast set and a small-signature one
SETS = [("SLH-DSA-SHA2-128f", "SLH_DSA_PURE_SHA2_128F", 21), ("SLH-DSA-SHAKE-128s", "SLH_DSA_PURE_SHAKE_128S", 26)]


@pytest.mark.parametrize("algorithm,oqs_name,arc", SETS, ids=[s[0] for s in SETS])
def test_sign_verify_and_csr(service, client_cnfs, tmp_path, algorithm, oqs_name, arc):
    cnf = client_cnfs(HOST.arch)
    ref = tmp_path / "device.ref.pem"
    keyref_tool("--generate", algorithm, "--label", "slh", "--out", str(ref), socket=service.socket)
    key_id = int(re.search(r"key 0x([0-9a-f]{8})", ref.read_text()).group(1), 16)
    with Client(service.socket) as c:
        public = c.export_public(key_id).public_key
    oqs = load()
    data, sig = tmp_path / "data", tmp_path / "sig"
    data.write_bytes(b"telemetry 42")
    with oqs.Signature(oqs_name) as verifier:
        for context in (None, b"wvds-test"):
            opts = ["-pkeyopt", f"context-string:{context.decode()}"] if context else []
            r = openssl(cnf, "pkeyutl", "-sign", "-rawin", "-inkey", str(ref), "-in", str(data), "-out", str(sig),
                        *opts)
            assert r.returncode == 0, r.stderr
            assert verifier.verify_with_ctx_str(b"telemetry 42", sig.read_bytes(), context or b"", public)
            assert not verifier.verify_with_ctx_str(b"telemetry 43", sig.read_bytes(), context or b"", public)
            r = openssl(cnf, "pkeyutl", "-verify", "-rawin", "-inkey", str(ref), "-in", str(data), "-sigfile",
                        str(sig), *opts)
            assert r.returncode == 0 and b"Verified Successfully" in r.stdout, r.stderr
    csr = tmp_path / "device.csr"
    r = openssl(cnf, "req", "-new", "-key", str(ref), "-subj", "/CN=slh-device/O=WvdS", "-out", str(csr))
    assert r.returncode == 0, r.stderr
    r = openssl(cnf, "req", "-in", str(csr), "-verify", "-noout", "-text")
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0 and "verify OK" in out, out
    assert f"Signature Algorithm: {algorithm}" in out and f"Public Key Algorithm: {algorithm}" in out, out
    der = tmp_path / "device.csr.der"
    assert openssl(cnf, "req", "-in", str(csr), "-outform", "DER", "-out", str(der)).returncode == 0
    oid = bytes([0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, arc])  # signatureAlgorithm, no params
    assert der.read_bytes().count(oid) == 2  # in the SubjectPublicKeyInfo and as the signature algorithm
