"""Pure ML-DSA (FIPS 204): round trips, contexts, hedging, and pyca/cryptography cross-checks both ways."""
import os
import random

import pytest
from cryptography.exceptions import InvalidSignature

import wvds.ossl as ossl
from support.fips_process import in_fips_process
from ossl.pyca import MLDSA

ALGS = ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"]
CONTEXTS = [b"", b"ctx", random.Random(255).randbytes(255)]  # fixed: test ids must not vary between runs


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("context", CONTEXTS, ids=["none", "short", "max"])
def test_round_trip(alg, context):
    key = ossl.generate_key(alg)
    public = ossl.key_from_public(alg, key.public_bytes())
    sig = ossl.mldsa_sign(key, b"message", context)
    assert len(sig) == ossl.ALGORITHMS[alg].signature_size
    assert ossl.mldsa_verify(public, b"message", sig, context)
    assert ossl.mldsa_verify(key, b"message", sig, context)
    assert not ossl.mldsa_verify(public, b"messagE", sig, context)
    assert not ossl.mldsa_verify(public, b"message", sig, context[:-1] if context else b"x")
    bad = bytearray(sig)
    bad[100] ^= 0x40
    assert not ossl.mldsa_verify(public, b"message", bytes(bad), context)
    assert not ossl.mldsa_verify(public, b"message", sig[:-1], context)
    assert not ossl.mldsa_verify(public, b"message", b"", context)


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_signing_is_hedged(alg):
    key = ossl.generate_key(alg)
    assert ossl.mldsa_sign(key, b"m") != ossl.mldsa_sign(key, b"m")


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("context", CONTEXTS, ids=["none", "short", "max"])
def test_pyca_verifies_ours(alg, context):
    key = ossl.generate_key(alg)
    message = os.urandom(1000)
    sig = ossl.mldsa_sign(key, message, context)
    theirs = MLDSA[alg][1].from_public_bytes(key.public_bytes())
    theirs.verify(sig, message, context or None)
    with pytest.raises(InvalidSignature):
        theirs.verify(sig, message + b"x", context or None)


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("context", CONTEXTS, ids=["none", "short", "max"])
def test_we_verify_pyca(alg, context):
    theirs = MLDSA[alg][0].generate()
    message = os.urandom(1000)
    sig = theirs.sign(message, context or None)
    public = ossl.key_from_public(alg, theirs.public_key().public_bytes_raw())
    assert ossl.mldsa_verify(public, message, sig, context)
    assert not ossl.mldsa_verify(public, message[1:], sig, context)


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_seed_from_pyca_gives_the_same_key(alg):
    theirs = MLDSA[alg][0].generate()
    seed = theirs.private_bytes_raw()
    ours = ossl.key_from_seed(alg, seed)
    assert ours.public_bytes() == theirs.public_key().public_bytes_raw()
    assert ours.private_bytes("seed") == seed
    theirs.public_key().verify(ossl.mldsa_sign(ours, b"m", b"c"), b"m", b"c")


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_any_right_length_public_key_imports_but_verifies_nothing(alg):
    """Every bit string of the right length is a valid ML-DSA public key encoding (FIPS 204 pkDecode)."""
    signer = ossl.generate_key(alg)
    sig = ossl.mldsa_sign(signer, b"m")
    other = ossl.key_from_public(alg, os.urandom(ossl.ALGORITHMS[alg].public_size))
    assert not ossl.mldsa_verify(other, b"m", sig)


@in_fips_process
def test_misuse_is_refused_before_c():
    key = ossl.generate_key("ML-DSA-44")
    public = ossl.key_from_public("ML-DSA-44", key.public_bytes())
    for call in (lambda: ossl.mldsa_sign(key, b"m", os.urandom(256)),
                 lambda: ossl.mldsa_verify(key, b"m", b"s", os.urandom(256)),
                 lambda: ossl.mldsa_sign(public, b"m"),
                 lambda: ossl.mldsa_sign(ossl.generate_key("EC-P-256"), b"m"),
                 lambda: ossl.mldsa_verify(ossl.generate_key("ML-KEM-512"), b"m", b"s"),
                 lambda: ossl.mldsa_sign(key, "text"),
                 lambda: ossl.mldsa_sign(b"not a key", b"m")):
        with pytest.raises(ossl.InvalidInputError):
            call()


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("offset", [64, 200], ids=["tr", "s1"])
def test_inconsistent_expanded_private_key_is_refused(alg, offset):
    """sk = rho || K || tr || s1 || s2 || t0: a wrong tr = H(pk) or a changed s1 must not import."""
    sk = bytearray(ossl.generate_key(alg).private_bytes("expanded"))
    sk[offset] ^= 1
    with pytest.raises(ossl.OsslError):  # an out-of-range s1 coefficient fails without a queued reason
        ossl.key_from_private(alg, bytes(sk))
