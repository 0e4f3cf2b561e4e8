"""The signature operations beyond TLS and CSRs, through the openssl CLI: streamed ECDSA digest-sign,
ECDSA over a ready digest, pure ML-DSA with and without a context string, and verification through
the provider (forwarded with the inline public key). Signatures are checked with pyca/cryptography;
what crypto_service cannot do fails with a reason."""
from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from support.targets import HOST

from .prov_support import assert_clean_failure, openssl, public_key_from_raw

MESSAGE = bytes(range(256)) * 400  # 100 KiB: more than one request could carry


@pytest.fixture(scope="module")
def keys(service, make_device_key):
    return {alg: make_device_key(service, alg) for alg in ("ECDSA-P384", "ML-DSA-44")}


@pytest.fixture
def cnf(client_cnfs):
    return client_cnfs(HOST.arch)


def test_ecdsa_streamed_digest_sign_and_ready_digest(keys, cnf, tmp_path):
    device = keys["ECDSA-P384"]
    public = public_key_from_raw(device.algorithm, device.public_key)
    data, sig = tmp_path / "data", tmp_path / "sig"
    data.write_bytes(MESSAGE)
    # openssl dgst: DigestSignInit/Update.../Final, SHA-384 computed here, the digest signed there
    r = openssl(cnf, "dgst", "-sha384", "-sign", str(device.ref), "-out", str(sig), str(data))
    assert r.returncode == 0, r.stderr
    public.verify(sig.read_bytes(), MESSAGE, ec.ECDSA(hashes.SHA384()))
    # openssl pkeyutl -sign over a SHA-256 digest (EVP_PKEY_sign: the hash follows from its length)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(MESSAGE)
    data.write_bytes(digest.finalize())
    r = openssl(cnf, "pkeyutl", "-sign", "-inkey", str(device.ref), "-in", str(data), "-out", str(sig))
    assert r.returncode == 0, r.stderr
    public.verify(sig.read_bytes(), data.read_bytes(), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    # verification through the provider: right and wrong
    r = openssl(cnf, "pkeyutl", "-verify", "-inkey", str(device.ref), "-in", str(data), "-sigfile", str(sig))
    assert r.returncode == 0 and b"Verified Successfully" in r.stdout, r.stderr
    data.write_bytes(bytes(32))
    r = openssl(cnf, "pkeyutl", "-verify", "-inkey", str(device.ref), "-in", str(data), "-sigfile", str(sig))
    assert r.returncode == 1 and b"Verification Failure" in r.stdout


def test_ecdsa_refuses_digests_the_service_does_not_sign(keys, cnf, tmp_path):
    data = tmp_path / "data"
    data.write_bytes(b"x")
    r = openssl(cnf, "dgst", "-sha3-256", "-sign", str(keys["ECDSA-P384"].ref), str(data))
    assert_clean_failure(r, "ECDSA with digest sha3-256", "crypto_service signs SHA-256/384/512")


def test_mldsa_pure_with_context_and_verify_through_the_provider(keys, cnf, tmp_path):
    device = keys["ML-DSA-44"]
    public = public_key_from_raw(device.algorithm, device.public_key)
    data, sig = tmp_path / "data", tmp_path / "sig"
    data.write_bytes(b"telemetry 42")
    for context in (None, b"wvds-test"):
        opts = ["-pkeyopt", f"context-string:{context.decode()}"] if context else []
        r = openssl(cnf, "pkeyutl", "-sign", "-rawin", "-inkey", str(device.ref), "-in", str(data), "-out", str(sig),
                    *opts)
        assert r.returncode == 0, r.stderr
        public.verify(sig.read_bytes(), b"telemetry 42", context)
        with pytest.raises(InvalidSignature):
            public.verify(sig.read_bytes(), b"telemetry 42", b"other" if context else b"x")
        r = openssl(cnf, "pkeyutl", "-verify", "-rawin", "-inkey", str(device.ref), "-in", str(data), "-sigfile",
                    str(sig), *opts)
        assert r.returncode == 0 and b"Verified Successfully" in r.stdout, r.stderr


def test_mldsa_limits_fail_with_the_reason(keys, cnf, tmp_path):
    device = keys["ML-DSA-44"]
    data = tmp_path / "data"
    data.write_bytes(MESSAGE)  # pure ML-DSA sends the whole message: one request's worth at most
    r = openssl(cnf, "pkeyutl", "-sign", "-rawin", "-inkey", str(device.ref), "-in", str(data))
    assert_clean_failure(r, "crypto_service refused the operation", "WVDS_PAYLOAD_TOO_LARGE")
    data.write_bytes(b"x")
    r = openssl(cnf, "pkeyutl", "-sign", "-rawin", "-inkey", str(device.ref), "-in", str(data), "-pkeyopt",
                "deterministic:1")
    assert_clean_failure(r, "not supported for a key held by crypto_service", "deterministic")
