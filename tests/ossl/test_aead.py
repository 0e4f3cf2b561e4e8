"""AES-256-GCM: round trips, pyca cross-checks both ways, provider-generated nonces, tamper detection."""
import inspect
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import wvds.ossl as ossl
from support.fips_process import in_fips_process

SIZES = [0, 1, 15, 16, 17, 1000, 65536]


@in_fips_process
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("aad_size", [0, 5, 300])
def test_round_trip_and_pyca_decrypts_ours(size, aad_size):
    key, aad, plaintext = os.urandom(32), os.urandom(aad_size), os.urandom(size)
    nonce, ciphertext, tag = ossl.aes_gcm_encrypt(key, aad, plaintext)
    assert (len(nonce), len(ciphertext), len(tag)) == (12, size, 16)
    assert ossl.aes_gcm_decrypt(key, nonce, aad, ciphertext, tag) == plaintext
    assert AESGCM(key).decrypt(nonce, ciphertext + tag, aad) == plaintext


@in_fips_process
@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_pyca(size):
    key, nonce, aad, plaintext = os.urandom(32), os.urandom(12), b"header", os.urandom(size)
    sealed = AESGCM(key).encrypt(nonce, plaintext, aad)
    assert ossl.aes_gcm_decrypt(key, nonce, aad, sealed[:-16], sealed[-16:]) == plaintext


@in_fips_process
def test_nonce_is_generated_by_the_provider_never_by_the_caller():
    # nothing in the API can carry a nonce into encryption ...
    assert list(inspect.signature(ossl.aes_gcm_encrypt).parameters) == ["key", "aad", "plaintext"]
    # ... and every encryption under one key gets a fresh one (aes_gcm_encrypt itself refuses a
    # result whose "iv-generated" parameter is not 1)
    key = os.urandom(32)
    nonces = {ossl.aes_gcm_encrypt(key, b"", b"same")[0] for _ in range(500)}
    assert len(nonces) == 500


@in_fips_process
@pytest.mark.parametrize("part", ["key", "nonce", "aad", "ciphertext", "tag"])
def test_any_modification_fails_authentication(part):
    fields = dict(key=os.urandom(32), aad=b"context", plaintext=b"sensor reading 42")
    nonce, ciphertext, tag = ossl.aes_gcm_encrypt(**fields)
    args = dict(key=fields["key"], nonce=nonce, aad=fields["aad"], ciphertext=ciphertext, tag=tag)
    value = bytearray(args[part])
    value[len(value) // 2] ^= 0x01
    args[part] = bytes(value)
    with pytest.raises(ossl.AuthenticationError) as err:
        ossl.aes_gcm_decrypt(**args)
    assert isinstance(err.value, ossl.OsslError)


@in_fips_process
def test_pyca_rejects_a_tampered_tag_of_ours_too():
    key = os.urandom(32)
    nonce, ciphertext, tag = ossl.aes_gcm_encrypt(key, b"", b"data")
    with pytest.raises(InvalidTag):
        AESGCM(key).decrypt(nonce, ciphertext + bytes(16), b"")


@in_fips_process
@pytest.mark.parametrize("function,args", [
    ("aes_gcm_encrypt", (b"k" * 16, b"", b"AES-128 key")),
    ("aes_gcm_encrypt", (b"k" * 33, b"", b"x")),
    ("aes_gcm_encrypt", ("k" * 32, b"", b"x")),
    ("aes_gcm_decrypt", (b"k" * 32, b"n" * 16, b"", b"x", b"t" * 16)),
    ("aes_gcm_decrypt", (b"k" * 32, b"n" * 12, b"", b"x", b"t" * 12)),
    ("aes_gcm_decrypt", (b"k" * 32, b"n" * 12, None, b"x", b"t" * 16)),
], ids=["aes128-key", "long-key", "str-key", "nonce-16", "tag-12", "aad-none"])
def test_malformed_arguments_are_refused_before_c(function, args):
    with pytest.raises(ossl.InvalidInputError):
        getattr(ossl, function)(*args)


@in_fips_process
def test_bytes_like_inputs():
    key = bytearray(os.urandom(32))
    nonce, ciphertext, tag = ossl.aes_gcm_encrypt(memoryview(key), bytearray(b"a"), memoryview(b"plain"))
    assert ossl.aes_gcm_decrypt(key, bytearray(nonce), memoryview(b"a"), bytearray(ciphertext), tag) == b"plain"


@in_fips_process
def test_concurrent_encryption_from_many_threads():
    import threading

    key = os.urandom(32)
    sealed, lock = [], threading.Lock()

    def work(i):
        for j in range(200):
            pt = f"{i}:{j}".encode()
            result = ossl.aes_gcm_encrypt(key, b"t", pt)
            with lock:
                sealed.append((pt, result))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({nonce for _, (nonce, _, _) in sealed}) == len(sealed) == 800
    assert all(ossl.aes_gcm_decrypt(key, n, b"t", c, t) == pt for pt, (n, c, t) in sealed)
