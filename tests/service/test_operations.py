"""Every operation against the real service, cross-checked with an independent
implementation (pyca/cryptography 50, which bundles its own OpenSSL)."""
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, mlkem
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wvds.client import ServiceStatusError
from wvds.protocol.constants import (MLKEM_AES_HKDF_INFO, Algorithm, EcdsaFlags, HashAlg, KeyFormat, KeyUsage,
                                     Status)
from wvds.protocol.payloads import KeyRef

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()

MLDSA = {Algorithm.ML_DSA_44: mldsa.MLDSA44PrivateKey, Algorithm.ML_DSA_65: mldsa.MLDSA65PrivateKey,
         Algorithm.ML_DSA_87: mldsa.MLDSA87PrivateKey}
MLDSA_PUB = {Algorithm.ML_DSA_44: mldsa.MLDSA44PublicKey, Algorithm.ML_DSA_65: mldsa.MLDSA65PublicKey,
             Algorithm.ML_DSA_87: mldsa.MLDSA87PublicKey}
ML_KEM_ALGS = [Algorithm.ML_KEM_512, Algorithm.ML_KEM_768, Algorithm.ML_KEM_1024]


class PeerKem:
    """An independent ML-KEM peer: pyca/cryptography for 768/1024, kyber-py (pure Python
    FIPS 203) for 512, which pyca 50 does not offer."""

    def __init__(self, alg):
        self.alg = alg
        if alg == Algorithm.ML_KEM_512:
            from kyber_py.ml_kem import ML_KEM_512
            self.kyber = ML_KEM_512
        else:
            self.kyber = None
            self.priv_cls = {Algorithm.ML_KEM_768: mlkem.MLKEM768PrivateKey,
                             Algorithm.ML_KEM_1024: mlkem.MLKEM1024PrivateKey}[alg]
            self.pub_cls = {Algorithm.ML_KEM_768: mlkem.MLKEM768PublicKey,
                            Algorithm.ML_KEM_1024: mlkem.MLKEM1024PublicKey}[alg]

    def encaps(self, public: bytes) -> tuple[bytes, bytes]:
        if self.kyber:
            return self.kyber.encaps(public)
        return self.pub_cls.from_public_bytes(public).encapsulate()

    def keypair(self):
        """(public key bytes, decapsulate(ct) -> secret)"""
        if self.kyber:
            ek, dk = self.kyber.keygen()
            return ek, lambda ct: self.kyber.decaps(dk, ct)
        k = self.priv_cls.generate()
        return k.public_key().public_bytes_raw(), k.decapsulate
CURVES = {Algorithm.ECDSA_P256: (ec.SECP256R1(), hashes.SHA256()), Algorithm.ECDSA_P384: (ec.SECP384R1(),
                                                                                        hashes.SHA384())}


def test_status_reports_fips_and_versions(client):
    s = client.status()
    assert s["version"] == "0.2.0" and s["protocol_version"] == 1
    assert s["openssl_version"].startswith("OpenSSL 3.6.3")
    assert s["fips"]["self_test_passed"] is True and s["fips"]["fips_default_properties"] is True
    assert s["fips"]["version"] == "3.6.3"
    assert s["limits"]["max_payload"] == 65536


def test_random(client):
    a, b = client.random(64), client.random(64)
    assert len(a) == 64 and a != b
    assert client.random(0) == b""
    assert len(client.random(65536)) == 65536


@pytest.mark.parametrize("size", [0, 1, 4096, 65502 - 15])  # 65502 - AAD: the largest that decrypts in one request
def test_aes_gcm_round_trip_and_pyca_cross_check(client, size):
    key = client.import_key(Algorithm.AES_256_GCM, KeyFormat.RAW, bytes(range(32)), KeyUsage.ENCRYPT
                            | KeyUsage.DECRYPT | KeyUsage.EXPORTABLE)
    pt, aad = bytes([7]) * size, b"hdr" * 5
    sealed = client.encrypt(key.key_id, pt, aad)
    assert len(sealed) == 12 + size + 16
    assert AESGCM(bytes(range(32))).decrypt(sealed[:12], sealed[12:], aad) == pt  # independent decrypt
    assert client.decrypt(key.key_id, sealed, aad) == pt
    nonce = b"\x01" * 12  # and the reverse: pyca encrypts, the service decrypts
    assert client.decrypt(key.key_id, nonce + AESGCM(bytes(range(32))).encrypt(nonce, pt, aad), aad) == pt


def test_aes_nonces_are_fresh_and_tamper_is_detected(client):
    key = client.generate_key(Algorithm.AES_256_GCM).key_id
    seals = [client.encrypt(key, b"same") for _ in range(20)]
    assert len({s[:12] for s in seals}) == 20
    bad = bytearray(seals[0])
    bad[-1] ^= 1
    with pytest.raises(ServiceStatusError) as e:
        client.decrypt(key, bytes(bad))
    assert e.value.status == Status.DECRYPTION_FAILED
    with pytest.raises(ServiceStatusError) as e:
        client.decrypt(key, seals[0], aad=b"other")
    assert e.value.status == Status.DECRYPTION_FAILED
    assert client.describe_key(key).uses == 20


def test_replay_protection_rejects_only_replays(client):
    key = client.generate_key(Algorithm.AES_256_GCM, KeyUsage.ENCRYPT | KeyUsage.DECRYPT
                              | KeyUsage.REPLAY_PROTECT).key_id
    seals = [client.encrypt(key, b"m%d" % i) for i in range(200)]
    assert [client.decrypt(key, s) for s in seals] == [b"m%d" % i for i in range(200)]  # no false positive
    with pytest.raises(ServiceStatusError) as e:
        client.decrypt(key, seals[17])
    assert e.value.status == Status.NONCE_REUSE


@pytest.mark.parametrize("alg", list(MLDSA))
def test_mldsa_sign_verify_cross_checked(client, alg):
    created = client.generate_key(alg, label="dev")
    msg, ctx = b"firmware manifest", b"wvds-test"
    sig = client.mldsa_sign(created.key_id, msg, ctx)
    pub = MLDSA_PUB[alg].from_public_bytes(created.public_key)
    pub.verify(sig, msg, ctx)  # pyca verifies the service's signature
    assert client.mldsa_verify(created.key_id, msg, sig, ctx)
    assert not client.mldsa_verify(created.key_id, msg + b"!", sig, ctx)
    assert not client.mldsa_verify(created.key_id, msg, sig, b"other ctx")
    # pyca signs, the service verifies with an inline public key and with an imported one
    theirs = MLDSA[alg].generate()
    their_pub = theirs.public_key().public_bytes_raw()
    their_sig = theirs.sign(msg, ctx)
    assert client.mldsa_verify(KeyRef(algorithm=alg, public_key=their_pub), msg, their_sig, ctx)
    imported = client.import_key(alg, KeyFormat.PUBLIC, their_pub)
    assert client.mldsa_verify(imported.key_id, msg, their_sig, ctx)


@pytest.mark.parametrize("alg", list(MLDSA))
def test_mldsa_seed_import_matches_pyca(client, alg):
    seed = bytes(range(32))
    theirs = MLDSA[alg].from_seed_bytes(seed)
    imported = client.import_key(alg, KeyFormat.SEED, seed, KeyUsage.SIGN | KeyUsage.VERIFY | KeyUsage.EXPORTABLE)
    assert imported.public_key == theirs.public_key().public_bytes_raw()
    assert client.export_key(imported.key_id, KeyFormat.SEED) == seed
    sig = client.mldsa_sign(imported.key_id, b"x")
    theirs.public_key().verify(sig, b"x")


@pytest.mark.parametrize("alg", ML_KEM_ALGS)
def test_mlkem_end_to_end_never_exposes_the_secret(client, alg):
    kp = client.mlkem_keygen(alg)
    enc = client.mlkem_encaps(kp.key_id)
    assert enc.secret == b"" and enc.key_id != 0  # the secret became an AES key in the service
    dec = client.mlkem_decaps(kp.key_id, enc.ciphertext)
    assert dec.secret == b"" and dec.key_id not in (0, enc.key_id)
    sealed = client.encrypt(enc.key_id, b"telemetry", b"aad")
    assert client.decrypt(dec.key_id, sealed, b"aad") == b"telemetry"
    with pytest.raises(ServiceStatusError) as e:  # the policy does not allow releasing the secret
        client.mlkem_decaps(kp.key_id, enc.ciphertext, return_secret=True)
    assert e.value.status == Status.PERMISSION_DENIED


@pytest.mark.parametrize("alg", ML_KEM_ALGS)
def test_mlkem_interoperates_with_an_independent_peer(client, alg):
    peer = PeerKem(alg)
    kp = client.mlkem_keygen(alg, KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET)
    # the peer encapsulates to the service's key; the service decapsulates
    secret, ct = peer.encaps(kp.public_key)
    assert client.mlkem_decaps(kp.key_id, ct, return_secret=True).secret == secret
    # and the HKDF-derived AES key matches what a peer derives from the same secret
    aes_id = client.mlkem_decaps(kp.key_id, ct).key_id
    peer_key = HKDF(hashes.SHA256(), 32, None, MLKEM_AES_HKDF_INFO).derive(secret)
    nonce = b"\x02" * 12
    assert client.decrypt(aes_id, nonce + AESGCM(peer_key).encrypt(nonce, b"hi", None)) == b"hi"
    # the service encapsulates to the peer's key (inline); the peer decapsulates
    their_pub, their_decaps = peer.keypair()
    enc = client.mlkem_encaps(KeyRef(algorithm=alg, public_key=their_pub), return_secret=True)
    assert their_decaps(enc.ciphertext) == enc.secret


@pytest.mark.parametrize("alg", list(CURVES))
def test_ecdsa_cross_checked(client, alg):
    curve, digest = CURVES[alg]
    created = client.generate_key(alg)
    pub = ec.EllipticCurvePublicKey.from_encoded_point(curve, created.public_key)
    sig = client.ecdsa_sign(created.key_id, b"csr tbs")
    pub.verify(sig, b"csr tbs", ec.ECDSA(digest))
    assert client.ecdsa_verify(created.key_id, b"csr tbs", sig)
    assert not client.ecdsa_verify(created.key_id, b"csr tbs!", sig)
    h = hashes.Hash(digest)
    h.update(b"tls transcript")
    d = h.finalize()
    sig = client.ecdsa_sign(created.key_id, d, HashAlg.DEFAULT, EcdsaFlags.PREHASHED)
    pub.verify(sig, b"tls transcript", ec.ECDSA(digest))
    theirs = ec.generate_private_key(curve)
    point = theirs.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert client.ecdsa_verify(KeyRef(algorithm=alg, public_key=point), b"m", theirs.sign(b"m", ec.ECDSA(digest)))


def test_key_management(client):
    k = client.generate_key(Algorithm.ML_DSA_65, label="device-key")
    d = client.describe_key(k.key_id)
    assert (d.algorithm, d.label, d.usage) == (Algorithm.ML_DSA_65, "device-key", KeyUsage.SIGN | KeyUsage.VERIFY)
    assert (k.key_id, Algorithm.ML_DSA_65) in client.list_keys()
    assert client.export_public(k.key_id).public_key == k.public_key
    with pytest.raises(ServiceStatusError) as e:  # not exportable
        client.export_key(k.key_id, KeyFormat.SEED)
    assert e.value.status == Status.PERMISSION_DENIED
    client.delete_key(k.key_id)
    with pytest.raises(ServiceStatusError) as e:
        client.describe_key(k.key_id)
    assert e.value.status == Status.KEY_NOT_FOUND
    assert k.key_id not in [i for i, _ in client.list_keys()]


def test_status_json_is_valid(client):
    from wvds.protocol.constants import RequestType
    status, data = client.transact(RequestType.STATUS)
    assert status == Status.SUCCESS and isinstance(json.loads(data), dict)


def test_no_secrets_in_the_log(client, service):
    """Key material, plaintexts and shared secrets never reach the log, even at debug level."""
    aes = bytes(range(100, 132))
    k = client.import_key(Algorithm.AES_256_GCM, KeyFormat.RAW, aes, KeyUsage.ENCRYPT | KeyUsage.DECRYPT
                          | KeyUsage.EXPORTABLE, label="log-check")
    secret_text = b"PLAINTEXT-MUST-NOT-BE-LOGGED"
    client.decrypt(k.key_id, client.encrypt(k.key_id, secret_text))
    kem = client.mlkem_keygen(Algorithm.ML_KEM_768, KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET)
    ss = client.mlkem_encaps(kem.key_id, return_secret=True).secret
    seed = bytes(range(32))
    client.import_key(Algorithm.ML_DSA_65, KeyFormat.SEED, seed)
    with pytest.raises(ServiceStatusError):
        client.decrypt(k.key_id, b"\x00" * 40)  # failures are logged too: still no data
    log = service.log()
    assert "log-check" in log or "key created" in log  # the log is there and has content
    for needle in (aes, secret_text, ss, seed):
        assert needle.hex() not in log and needle.hex().upper() not in log
    assert secret_text.decode() not in log
