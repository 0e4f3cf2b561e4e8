"""`openssl req -new -key device.ref.pem` makes a CSR signed in crypto_service that verifies with the
device's public key (as crypto_service exports it), checked with pyca/cryptography."""
from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from support.targets import HOST

from .prov_support import ALGORITHMS, openssl, public_key_from_raw

SIGNATURE_OID = {"ML-DSA-44": "2.16.840.1.101.3.4.3.17", "ML-DSA-65": "2.16.840.1.101.3.4.3.18",
                 "ML-DSA-87": "2.16.840.1.101.3.4.3.19", "ECDSA-P256": "1.2.840.10045.4.3.2",
                 "ECDSA-P384": "1.2.840.10045.4.3.3"}


def spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_csr_verifies_with_the_device_public_key(service, make_device_key, client_cnfs, tmp_path, algorithm):
    device = make_device_key(service, algorithm)
    out = tmp_path / "device.csr"
    r = openssl(client_cnfs(HOST.arch), "req", "-new", "-key", str(device.ref), "-subj", f"/CN={device.cn}/O=WvdS",
                "-out", str(out))
    assert r.returncode == 0, r.stderr.decode()
    csr = x509.load_pem_x509_csr(out.read_bytes())
    assert spki(csr.public_key()) == spki(public_key_from_raw(algorithm, device.public_key))
    assert csr.is_signature_valid
    assert csr.signature_algorithm_oid.dotted_string == SIGNATURE_OID[algorithm]
    assert csr.subject.rfc4514_string() == f"O=WvdS,CN={device.cn}"
