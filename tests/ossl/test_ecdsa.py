"""ECDSA on P-256/P-384 (DER signatures): round trips, prehashed input, pyca cross-checks, key validation."""
import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import wvds.ossl as ossl
from support.fips_process import in_fips_process
from ossl.pyca import CURVES

ALGS = ["EC-P-256", "EC-P-384"]
DIGESTS = ["SHA256", "SHA384", "SHA512"]
PYCA_HASH = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(), "SHA512": hashes.SHA512()}
ORDER = {"EC-P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
         "EC-P-384": int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77A"
                         "ECEC196ACCC52973", 16)}


def _pyca_public(key):
    return ec.EllipticCurvePublicKey.from_encoded_point(CURVES[key.algorithm], key.public_bytes())


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("digest", DIGESTS)
def test_round_trip_and_prehashed_equivalence(alg, digest):
    key = ossl.generate_key(alg)
    public = ossl.key_from_public(alg, key.public_bytes())
    data = os.urandom(300)
    sig = ossl.ecdsa_sign(key, data, digest)
    assert ossl.ecdsa_verify(public, data, sig, digest)
    assert not ossl.ecdsa_verify(public, data + b"x", sig, digest)
    prehash = hashlib.new(digest.lower(), data).digest()
    assert ossl.ecdsa_verify(public, prehash, sig, digest, prehashed=True)
    sig2 = ossl.ecdsa_sign(key, prehash, digest, prehashed=True)
    assert ossl.ecdsa_verify(public, data, sig2, digest)


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("digest", DIGESTS)
@pytest.mark.parametrize("prehashed", [False, True])
def test_pyca_verifies_ours(alg, digest, prehashed):
    key = ossl.generate_key(alg)
    data = os.urandom(100)
    message = hashlib.new(digest.lower(), data).digest() if prehashed else data
    sig = ossl.ecdsa_sign(key, message, digest, prehashed)
    algorithm = Prehashed(PYCA_HASH[digest]) if prehashed else PYCA_HASH[digest]
    _pyca_public(key).verify(sig, message, ec.ECDSA(algorithm))


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("digest", DIGESTS)
def test_we_verify_pyca(alg, digest):
    theirs = ec.generate_private_key(CURVES[alg])
    data = os.urandom(100)
    sig = theirs.sign(data, ec.ECDSA(PYCA_HASH[digest]))
    public = ossl.key_from_public(alg, theirs.public_key().public_bytes(Encoding.X962,
                                                                          PublicFormat.UncompressedPoint))
    assert ossl.ecdsa_verify(public, data, sig, digest)
    assert not ossl.ecdsa_verify(public, data, sig, "SHA512" if digest != "SHA512" else "SHA256")


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_private_scalar_from_pyca_gives_the_same_key(alg):
    theirs = ec.generate_private_key(CURVES[alg])
    size = ossl.ALGORITHMS[alg].private_size
    scalar = theirs.private_numbers().private_value.to_bytes(size, "big")
    ours = ossl.key_from_private(alg, scalar)
    assert ours.public_bytes() == theirs.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert ours.private_bytes("raw") == scalar
    theirs.public_key().verify(ossl.ecdsa_sign(ours, b"m"), b"m", ec.ECDSA(hashes.SHA256()))


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("which", ["zero", "order", "above-order", "all-ones"])
def test_out_of_range_scalars_are_refused(alg, which):
    size = ossl.ALGORITHMS[alg].private_size
    value = {"zero": 0, "order": ORDER[alg], "above-order": ORDER[alg] + 1, "all-ones": 2 ** (8 * size) - 1}[which]
    with pytest.raises(ossl.OsslError):
        ossl.key_from_private(alg, value.to_bytes(size, "big"))


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_malformed_public_points_are_refused(alg):
    pub = ossl.generate_key(alg).public_bytes()
    off_curve = pub[:-1] + bytes([pub[-1] ^ 1])
    with pytest.raises(ossl.OsslError):
        ossl.key_from_public(alg, off_curve)
    with pytest.raises(ossl.OsslError):
        ossl.key_from_public(alg, b"\x04" + bytes(len(pub) - 1))  # (0, 0) is not on the curve
    with pytest.raises(ossl.InvalidInputError):
        ossl.key_from_public(alg, b"\x02" + pub[1:])  # right length, not an uncompressed point
    coordinate = (len(pub) - 1) // 2
    compressed = bytes([2 + (pub[-1] & 1)]) + pub[1:1 + coordinate]
    with pytest.raises(ossl.InvalidInputError):
        ossl.key_from_public(alg, compressed)


@in_fips_process
@pytest.mark.parametrize("sig", [b"", b"\x30\x00", b"\x30\x06\x02\x01\x01\x02\x01\x01", b"\xff" * 72,
                                 b"\x30" * 200])
def test_malformed_signatures_do_not_verify(sig):
    key = ossl.generate_key("EC-P-256")
    assert not ossl.ecdsa_verify(key, b"m", sig)
    assert not ossl.ecdsa_verify(key, hashlib.sha256(b"m").digest(), sig, prehashed=True)


@in_fips_process
def test_misuse_is_refused_before_c():
    key = ossl.generate_key("EC-P-256")
    for call in (lambda: ossl.ecdsa_sign(key, b"m", "MD5"),
                 lambda: ossl.ecdsa_sign(key, b"m", "SHA1"),
                 lambda: ossl.ecdsa_sign(key, b"short", "SHA256", prehashed=True),
                 lambda: ossl.ecdsa_verify(key, b"x" * 48, b"sig", "SHA256", prehashed=True),
                 lambda: ossl.ecdsa_sign(ossl.key_from_public("EC-P-256", key.public_bytes()), b"m"),
                 lambda: ossl.ecdsa_sign(ossl.generate_key("ML-DSA-44"), b"m")):
        with pytest.raises(ossl.InvalidInputError):
            call()
