"""Fuzz target: the service's ML-DSA and ML-KEM (wvds.ossl over our OpenSSL 3.6.3 FIPS provider) against
liboqs (another code base, built without OpenSSL: recipes/liboqs), on random keys, messages, contexts
and mutations. Both must agree on every verdict and every shared secret (docs/conformance.md).

Input: byte 0 picks ML-DSA-44/65/87 or ML-KEM-512/768/1024 (mod 6); then a seed, and for ML-DSA a context,
a message and a mutation (none / message / signature / context, position, bit), for ML-KEM which side
encapsulates and an XOR mask over the ciphertext (all zero: the real secret, else implicit rejection).
Each ML-DSA input signs with both implementations (the service's key exported as the expanded key
liboqs signs with) and verifies each signature, mutated or not, with both.

    python tests/fuzz/fuzz_liboqs_differential.py tests/fuzz/corpus/liboqs   (FIPS environment as fuzz_request.py)
"""
from __future__ import annotations

import fuzzlib

import atheris

with atheris.instrument_imports(include=["wvds.ossl"]):
    from wvds import ossl

from support.liboqs import load

MLDSA = ("ML-DSA-44", "ML-DSA-65", "ML-DSA-87")
MLKEM = ("ML-KEM-512", "ML-KEM-768", "ML-KEM-1024")
ossl.load()
oqs = load()


def _mutate(data: bytes, where: int, bit: int) -> bytes:
    if not data:
        return b"\x01"
    i = where % len(data)
    return data[:i] + bytes([data[i] ^ (1 << (bit % 8))]) + data[i + 1:]


def _mldsa(name: str, fdp: atheris.FuzzedDataProvider) -> None:
    seed = fdp.ConsumeBytes(32).ljust(32, b"\0")
    ctx = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 255))
    what, where, bit = fdp.ConsumeIntInRange(0, 3), fdp.ConsumeIntInRange(0, 1 << 16), fdp.ConsumeIntInRange(0, 7)
    msg = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
    key = ossl.key_from_seed(name, seed)
    pk = key.public_bytes()
    public = ossl.key_from_public(name, pk)
    with oqs.Signature(name, secret_key=key.private_bytes("expanded")) as sig:
        for signature in (ossl.mldsa_sign(key, msg, ctx), sig.sign_with_ctx_str(msg, ctx)):
            m, s, c = msg, signature, ctx
            if what == 1:
                m = _mutate(msg, where, bit)
            elif what == 2:
                s = _mutate(signature, where, bit)
            elif what == 3:
                c = _mutate(ctx, where, bit)[:255]
            ours, theirs = ossl.mldsa_verify(public, m, s, c), sig.verify_with_ctx_str(m, s, c, pk)
            assert ours == theirs, f"{name}: service says {ours}, liboqs {theirs} (mutation {what})"
            assert ours == (what == 0), f"{name}: verdict {ours} for mutation {what}"


def _mlkem(name: str, fdp: atheris.FuzzedDataProvider) -> None:
    seed = fdp.ConsumeBytes(64).ljust(64, b"\0")
    service_encapsulates = fdp.ConsumeBool()
    key = ossl.key_from_seed(name, seed)
    with oqs.KeyEncapsulation(name) as kem:
        pk = kem.generate_keypair_seed(seed)
        assert key.public_bytes() == pk, f"{name}: the seed gives different public keys"
        if service_encapsulates:
            ct, secret = ossl.mlkem_encapsulate(ossl.key_from_public(name, pk))
        else:
            ct, secret = kem.encap_secret(pk)
        mask = fdp.ConsumeBytes(len(ct)).ljust(len(ct), b"\0")
        bad = bytes(a ^ b for a, b in zip(ct, mask))
        ours, theirs = ossl.mlkem_decapsulate(key, bad), kem.decap_secret(bad)
        assert ours == theirs, f"{name}: different secrets for the same ciphertext"
        assert (ours == secret) == (bad == ct), f"{name}: implicit rejection gave the real secret, or not"


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    pick = data[0] % 6
    if pick < 3:
        _mldsa(MLDSA[pick], fdp)
    else:
        _mlkem(MLKEM[pick - 3], fdp)


if __name__ == "__main__":
    fuzzlib.run(TestOneInput)
