"""ML-KEM (FIPS 203): round trips, pyca/cryptography cross-checks both ways, encapsulation key checks."""
import os

import pytest

import wvds.ossl as ossl
from support.fips_process import in_fips_process
from ossl.pyca import MLKEM

ALGS = ["ML-KEM-512", "ML-KEM-768", "ML-KEM-1024"]
CROSS = list(MLKEM)  # pyca 50 has no ML-KEM-512


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_round_trip(alg):
    key = ossl.generate_key(alg)
    public = ossl.key_from_public(alg, key.public_bytes())
    ct, secret = ossl.mlkem_encapsulate(public)
    assert len(ct) == ossl.ALGORITHMS[alg].ciphertext_size and len(secret) == 32
    assert ossl.mlkem_decapsulate(key, ct) == secret
    ct2, secret2 = ossl.mlkem_encapsulate(key)
    assert ct2 != ct and secret2 != secret
    assert ossl.mlkem_decapsulate(key, ct2) == secret2


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_wrong_ciphertext_gives_implicit_rejection(alg):
    key = ossl.generate_key(alg)
    ct, secret = ossl.mlkem_encapsulate(key)
    bad = bytearray(ct)
    bad[0] ^= 1
    other = ossl.mlkem_decapsulate(key, bytes(bad))
    assert len(other) == 32 and other != secret
    assert ossl.mlkem_decapsulate(key, bytes(bad)) == other  # deterministic: derived from z and the ciphertext


@in_fips_process
@pytest.mark.parametrize("alg", CROSS)
def test_pyca_encapsulates_to_our_key(alg):
    key = ossl.generate_key(alg)
    secret, ct = MLKEM[alg][1].from_public_bytes(key.public_bytes()).encapsulate()
    assert ossl.mlkem_decapsulate(key, ct) == secret


@in_fips_process
@pytest.mark.parametrize("alg", CROSS)
def test_we_encapsulate_to_pyca(alg):
    theirs = MLKEM[alg][0].generate()
    ct, secret = ossl.mlkem_encapsulate(ossl.key_from_public(alg, theirs.public_key().public_bytes_raw()))
    assert theirs.decapsulate(ct) == secret


@in_fips_process
@pytest.mark.parametrize("alg", CROSS)
def test_seed_from_pyca_gives_the_same_key(alg):
    theirs = MLKEM[alg][0].generate()
    seed = theirs.private_bytes_raw()
    assert len(seed) == 64
    ours = ossl.key_from_seed(alg, seed)
    assert ours.public_bytes() == theirs.public_key().public_bytes_raw()
    secret, ct = theirs.public_key().encapsulate()
    assert ossl.mlkem_decapsulate(ours, ct) == secret


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_public_key_failing_the_modulus_check_is_refused(alg):
    """FIPS 203 7.2: every 12-bit coefficient of the encapsulation key must be < q = 3329."""
    pub = bytearray(ossl.generate_key(alg).public_bytes())
    pub[0], pub[1] = 0xFF, pub[1] | 0x0F  # first coefficient := 4095
    with pytest.raises(ossl.OsslError) as err:
        ossl.key_from_public(alg, bytes(pub))
    assert not isinstance(err.value, ossl.InvalidInputError)  # OpenSSL's verdict, with its reason
    assert err.value.errors, err.value


@in_fips_process
@pytest.mark.parametrize("alg", ALGS)
def test_inconsistent_expanded_private_key_is_refused(alg):
    """The expanded key embeds ek and H(ek); a corrupted H(ek) must not import."""
    dk = bytearray(ossl.generate_key(alg).private_bytes("expanded"))
    dk[-64] ^= 1  # H(ek) sits just before the final 32-byte z
    with pytest.raises(ossl.OsslError):
        ossl.key_from_private(alg, bytes(dk))


@in_fips_process
def test_misuse_is_refused_before_c():
    key = ossl.generate_key("ML-KEM-768")
    public = ossl.key_from_public("ML-KEM-768", key.public_bytes())
    for call in (lambda: ossl.mlkem_decapsulate(key, os.urandom(1087)),
                 lambda: ossl.mlkem_decapsulate(public, os.urandom(1088)),
                 lambda: ossl.mlkem_encapsulate(ossl.generate_key("ML-DSA-44")),
                 lambda: ossl.mlkem_decapsulate(key, None)):
        with pytest.raises(ossl.InvalidInputError):
            call()
