"""PKey: generation, raw import/export in every form, validation, SPKI DER, lifetime and threads."""
import threading

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

import wvds.ossl as ossl
from support.fips_process import in_fips_process

# Every algorithm but the slow small-signature SLH-DSA sets (0.1-1.5 s per key): SHA2-128s stands for them.
ALGS = [a for a in ossl.ALGORITHMS if not (a.startswith("SLH-") and a.endswith("s")) or a == "SLH-DSA-SHA2-128s"]
PQC = [a for a in ALGS if a.startswith(("ML-", "SLH-"))]
SLH = [a for a in ossl.ALGORITHMS if a.startswith("SLH-")]


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_generate_export_reimport(alg):
    s = ossl.ALGORITHMS[alg]
    key = ossl.generate_key(alg)
    assert key.algorithm == alg and key.has_private
    pub = key.public_bytes()
    assert len(pub) == s.public_size
    if s.family == "EC":
        assert pub[0] == 0x04
        forms = {"raw": s.private_size}
    elif s.family == "SLH-DSA":  # generated from a seed, but OpenSSL keeps none to give out
        forms = {"expanded": s.private_size}
        with pytest.raises(ossl.OsslError):
            key.private_bytes("seed")
    else:
        forms = {"seed": s.seed_size, "expanded": s.private_size}
    for form, size in forms.items():
        material = key.private_bytes(form)
        assert len(material) == size
        again = ossl.key_from_seed(alg, material) if form == "seed" else ossl.key_from_private(alg, material)
        assert again.has_private and again.public_bytes() == pub
        assert again.private_bytes("raw" if s.family == "EC" else "expanded") == key.private_bytes(
            "raw" if s.family == "EC" else "expanded")
    public = ossl.key_from_public(alg, pub)
    assert not public.has_private and public.public_bytes() == pub


@in_fips_process
@pytest.mark.parametrize("alg", [a for a in PQC if a.startswith("ML-")])  # OpenSSL keeps no SLH-DSA seed
def test_seed_import_is_deterministic_and_keeps_the_seed(alg):
    seed = bytes(range(ossl.ALGORITHMS[alg].seed_size))
    a, b = ossl.key_from_seed(alg, seed), ossl.key_from_seed(alg, seed)
    assert a.public_bytes() == b.public_bytes()
    assert a.private_bytes("seed") == seed


@in_fips_process
@pytest.mark.parametrize("alg", PQC)
def test_expanded_import_has_no_seed(alg):
    key = ossl.key_from_private(alg, ossl.generate_key(alg).private_bytes("expanded"))
    with pytest.raises(ossl.OsslError, match="seed"):
        key.private_bytes("seed")


# NIST algorithm identifiers (CSOR): ML-DSA 2.16.840.1.101.3.4.3.{17,18,19}, ML-KEM 2.16.840.1.101.3.4.4.{1,2,3}
# SLH-DSA 2.16.840.1.101.3.4.3.{20..31} in the order SHA2-128s, 128f, ..., SHAKE-256f (FIPS 205 OIDs).
OID_TAIL = {"ML-DSA-44": "311", "ML-DSA-65": "312", "ML-DSA-87": "313",
            "ML-KEM-512": "401", "ML-KEM-768": "402", "ML-KEM-1024": "403",
            **{name: f"3{20 + i:02x}" for i, name in enumerate(SLH)}}


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


@in_fips_process
@pytest.mark.parametrize("alg", PQC)
def test_spki_der_is_the_nist_encoding(alg):
    """SEQUENCE { SEQUENCE { OID } (no parameters), BIT STRING { 0 unused bits, raw public key } }."""
    key = ossl.generate_key(alg)
    oid = _der(0x06, bytes.fromhex("608648016503040" + OID_TAIL[alg]))
    expected = _der(0x30, _der(0x30, oid) + _der(0x03, b"\x00" + key.public_bytes()))
    assert ossl.public_key_der(key) == expected


@in_fips_process
@pytest.mark.parametrize("alg", [a for a in ALGS if a != "ML-KEM-512" and a not in SLH])  # not in pyca 50
def test_spki_der_matches_pyca(alg):
    key = ossl.generate_key(alg)
    der = ossl.public_key_der(key)
    theirs = load_der_public_key(der)
    assert theirs.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == der
    raw = (theirs.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) if alg.startswith("EC")
           else theirs.public_bytes_raw())
    assert raw == key.public_bytes()


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_wrong_lengths_are_refused_before_c(alg):
    s = ossl.ALGORITHMS[alg]
    for size in (0, s.public_size - 1, s.public_size + 1):
        with pytest.raises(ossl.InvalidInputError):
            ossl.key_from_public(alg, bytes(size))
    with pytest.raises(ossl.InvalidInputError):
        ossl.key_from_private(alg, bytes(s.private_size + 1))
    if s.seed_size:
        with pytest.raises(ossl.InvalidInputError):
            ossl.key_from_seed(alg, bytes(s.seed_size - 1))
    else:
        with pytest.raises(ossl.InvalidInputError):
            ossl.key_from_seed(alg, bytes(32))


@in_fips_process
@pytest.mark.parametrize("alg,form", [("ML-DSA-65", "raw"), ("ML-KEM-768", "raw"), ("EC-P-256", "seed"),
                                      ("EC-P-256", "expanded"), ("ML-DSA-44", "pem")])
def test_wrong_private_form(alg, form):
    with pytest.raises(ossl.InvalidInputError):
        ossl.generate_key(alg).private_bytes(form)


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_public_key_has_no_private_bytes(alg):
    public = ossl.key_from_public(alg, ossl.generate_key(alg).public_bytes())
    with pytest.raises(ossl.InvalidInputError, match="no private"):
        public.private_bytes("raw" if alg.startswith("EC") else "expanded")


@in_fips_process
@pytest.mark.parametrize("alg", ["RSA", "ML-KEM", "EC", "ed25519", "", None])
def test_unknown_algorithm(alg):
    with pytest.raises(ossl.InvalidInputError, match="unknown algorithm"):
        ossl.generate_key(alg)


@in_fips_process
def test_closed_key_is_refused_and_close_is_idempotent():
    key = ossl.generate_key("ML-DSA-44")
    with key:
        assert "private" in repr(key)
    assert key.closed and "closed" in repr(key)
    key.close()
    with pytest.raises(ossl.OsslError, match="closed"):
        key.public_bytes()
    with pytest.raises(ossl.OsslError, match="closed"):
        ossl.mldsa_sign(key, b"m")


@in_fips_process
def test_concurrent_signing_and_close():
    """Many threads sign with one key while it is closed under them: valid signatures or a clean error."""
    key = ossl.generate_key("ML-DSA-44")
    public = ossl.key_from_public("ML-DSA-44", key.public_bytes())
    results, errors = [], []

    def sign(i):
        for j in range(15):
            msg = f"{i}/{j}".encode()
            try:
                results.append((msg, ossl.mldsa_sign(key, msg)))
            except ossl.OsslError as e:
                errors.append(str(e))

    threads = [threading.Thread(target=sign, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while len(results) < 20:
        threading.Event().wait(0.001)
    key.close()
    for t in threads:
        t.join()
    assert all("closed" in e for e in errors), errors
    assert all(ossl.mldsa_verify(public, m, s) for m, s in results)
    assert len(results) >= 20
