"""The service against liboqs, both ways: ML-DSA-44/65/87 and ML-KEM-512/768/1024 (docs/conformance.md).

liboqs is another code base (built without OpenSSL, recipes/liboqs): an error that OpenSSL builds share
would not hide on both sides. Each direction: one side produces, the other checks; a modified message,
signature or context is refused by both; ML-KEM secrets agree, including the implicit-rejection secret of
a malformed ciphertext; keys imported from a seed or an expanded key give the same public key.
"""
from __future__ import annotations

import random

import pytest

from support.liboqs import load
from wvds.protocol.constants import MAX_PAYLOAD, SLH_DSA, Algorithm, KeyFormat, KeyUsage
from wvds.protocol.payloads import KeyRef, MldsaVerifyRequest

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()

MLDSA = {Algorithm.ML_DSA_44: "ML-DSA-44", Algorithm.ML_DSA_65: "ML-DSA-65", Algorithm.ML_DSA_87: "ML-DSA-87"}
MLKEM = {Algorithm.ML_KEM_512: "ML-KEM-512", Algorithm.ML_KEM_768: "ML-KEM-768", Algorithm.ML_KEM_1024: "ML-KEM-1024"}
CONTEXTS = [b"", b"wvds", bytes(range(255))]
KEM_ROUNDS = 64
SLHDSA = {a: "SLH_DSA_PURE_" + a.name[8:] for a in SLH_DSA}  # liboqs's names
# The small-signature ("s") sets take 0.1-1.5 s per key or signature natively; emulated (aarch64 under
# qemu-user) that is minutes, past any sensible client timeout.
SLOW = {a for a in SLH_DSA if a.name.endswith("S")}


def messages(alg: Algorithm, public_key: bytes, signature_len: int, context: bytes, rnd: random.Random) -> list[bytes]:
    """0 B up to the largest message a verify request can carry (64 KiB payload, less the key and signature)."""
    room = MAX_PAYLOAD - len(MldsaVerifyRequest(KeyRef(algorithm=alg, public_key=public_key), b"",
                                                b"\0" * signature_len, context).encode())
    return [rnd.randbytes(n) for n in (0, 1, 33, 64, 1000, 4096, 16384, room)]


def flip(data: bytes, rnd: random.Random) -> bytes:
    i = rnd.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rnd.randrange(8))]) + data[i + 1:]


def oqs_verify(sig, message: bytes, signature: bytes, context: bytes, public_key: bytes) -> bool:
    return sig.verify_with_ctx_str(message, signature, context, public_key)


@pytest.mark.parametrize("alg", list(MLDSA), ids=lambda a: MLDSA[a])
def test_service_signs_liboqs_verifies(client, alg, tally):
    oqs, rnd = load(), random.Random(int(alg))
    created = client.generate_key(alg)
    pk = created.public_key
    with oqs.Signature(MLDSA[alg]) as sig:
        for ctx in CONTEXTS:
            for msg in messages(alg, pk, sig.length_signature, ctx, rnd):
                s = client.mldsa_sign(created.key_id, msg, ctx)
                assert oqs_verify(sig, msg, s, ctx, pk), f"liboqs refuses the service's signature ({len(msg)} B)"
                tally(f"{MLDSA[alg]} service signs, liboqs verifies")
                bad_msg = flip(msg, rnd) if msg else b"\0"
                bad_sig, bad_ctx = flip(s, rnd), (ctx + b"x")[:255] if ctx != bytes(range(255)) else b""
                for m, g, c in ((bad_msg, s, ctx), (msg, bad_sig, ctx), (msg, s, bad_ctx)):
                    assert not oqs_verify(sig, m, g, c, pk)
                    assert not client.mldsa_verify(created.key_id, m, g, c)
                    tally(f"{MLDSA[alg]} modified message/signature/context refused by both")


@pytest.mark.parametrize("alg", list(MLDSA), ids=lambda a: MLDSA[a])
def test_liboqs_signs_service_verifies(client, alg, tally):
    oqs, rnd = load(), random.Random(100 + int(alg))
    with oqs.Signature(MLDSA[alg]) as sig:
        pk = sig.generate_keypair()
        imported = client.import_key(alg, KeyFormat.PUBLIC, pk).key_id
        inline = KeyRef(algorithm=alg, public_key=pk)
        for ctx in CONTEXTS:
            for msg in messages(alg, pk, sig.length_signature, ctx, rnd):
                s = sig.sign_with_ctx_str(msg, ctx)
                assert client.mldsa_verify(inline, msg, s, ctx) and client.mldsa_verify(imported, msg, s, ctx)
                tally(f"{MLDSA[alg]} liboqs signs, service verifies (inline and imported key)", 2)
                bad = flip(s, rnd)
                assert not client.mldsa_verify(inline, msg, bad, ctx) and not oqs_verify(sig, msg, bad, ctx, pk)
                tally(f"{MLDSA[alg]} modified message/signature/context refused by both")


@pytest.mark.parametrize("alg", list(MLDSA), ids=lambda a: MLDSA[a])
def test_an_expanded_liboqs_key_is_the_same_key_in_the_service(client, alg, tally):
    oqs = load()
    with oqs.Signature(MLDSA[alg]) as sig:
        pk = sig.generate_keypair()
        created = client.import_key(alg, KeyFormat.EXPANDED, sig.export_secret_key(), KeyUsage.SIGN | KeyUsage.VERIFY)
        assert created.public_key == pk
        assert client.export_public(created.key_id).public_key == pk
        assert oqs_verify(sig, b"same key", client.mldsa_sign(created.key_id, b"same key", b"c"), b"c", pk)
        tally(f"{MLDSA[alg]} expanded key imported: same public key, signature verifies")


@pytest.mark.parametrize("alg", list(MLKEM), ids=lambda a: MLKEM[a])
def test_liboqs_encapsulates_service_decapsulates(client, alg, tally):
    oqs = load()
    usage = KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET
    created = client.mlkem_keygen(alg, usage)
    with oqs.KeyEncapsulation(MLKEM[alg]) as kem:
        for _ in range(KEM_ROUNDS):
            ct, secret = kem.encap_secret(created.public_key)
            assert client.mlkem_decaps(created.key_id, ct, return_secret=True).secret == secret
            tally(f"{MLKEM[alg]} liboqs encapsulates, service decapsulates: same secret")


@pytest.mark.parametrize("alg", list(MLKEM), ids=lambda a: MLKEM[a])
def test_service_encapsulates_liboqs_decapsulates(client, alg, tally):
    oqs = load()
    with oqs.KeyEncapsulation(MLKEM[alg]) as kem:
        pk = kem.generate_keypair()
        for _ in range(KEM_ROUNDS):
            r = client.mlkem_encaps(KeyRef(algorithm=alg, public_key=pk), return_secret=True)
            assert kem.decap_secret(r.ciphertext) == r.secret
            tally(f"{MLKEM[alg]} service encapsulates, liboqs decapsulates: same secret")


@pytest.mark.parametrize("alg", list(MLKEM), ids=lambda a: MLKEM[a])
def test_seed_keys_and_implicit_rejection_agree(client, alg, tally):
    """A key from one 64-byte seed (d ‖ z) is the same key on both sides; a malformed ciphertext gives both
    the same implicit-rejection secret (FIPS 203: J(z ‖ c)), which is not the real one."""
    oqs, rnd = load(), random.Random(200 + int(alg))
    seed = rnd.randbytes(64)
    with oqs.KeyEncapsulation(MLKEM[alg]) as kem:
        pk = kem.generate_keypair_seed(seed)
        usage = KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET
        created = client.import_key(alg, KeyFormat.SEED, seed, usage)
        assert created.public_key == pk
        tally(f"{MLKEM[alg]} seed key: same public key")
        for _ in range(KEM_ROUNDS):
            ct, secret = kem.encap_secret(pk)
            bad = flip(ct, rnd)
            ours, theirs = client.mlkem_decaps(created.key_id, bad, return_secret=True).secret, kem.decap_secret(bad)
            assert ours == theirs != secret
            tally(f"{MLKEM[alg]} malformed ciphertext: same implicit-rejection secret")


@pytest.mark.parametrize("alg", SLH_DSA, ids=lambda a: a.name)
def test_slhdsa_both_ways(client, programs, alg, tally):
    """SLH-DSA (FIPS 205): each side's signature verifies on the other (inline and imported key), modified ones
    are refused by both, and a liboqs private key imported into the service is the same key."""
    if alg in SLOW and not programs.target.native:
        pytest.skip("an emulated small-signature SLH-DSA set takes minutes: run natively (x86_64 and source)")
    oqs, rnd = load(), random.Random(300 + int(alg))
    created = client.generate_key(alg)
    with oqs.Signature(SLHDSA[alg]) as sig:
        pk = sig.generate_keypair()
        imported = client.import_key(alg, KeyFormat.EXPANDED, sig.export_secret_key(), KeyUsage.SIGN | KeyUsage.VERIFY)
        assert imported.public_key == pk
        tally(f"{alg.name} liboqs private key imported: same public key")
        for ctx in (b"", b"wvds"):
            msg = rnd.randbytes(rnd.choice((0, 33, 4096)))
            s = client.slhdsa_sign(created.key_id, msg, ctx)
            assert oqs_verify(sig, msg, s, ctx, created.public_key)
            tally(f"{alg.name} service signs, liboqs verifies")
            theirs = sig.sign_with_ctx_str(msg, ctx)
            assert client.slhdsa_verify(KeyRef(algorithm=alg, public_key=pk), msg, theirs, ctx)
            assert client.slhdsa_verify(imported.key_id, msg, theirs, ctx)
            tally(f"{alg.name} liboqs signs, service verifies (inline and imported key)", 2)
            bad = flip(s, rnd)
            assert not oqs_verify(sig, msg, bad, ctx, created.public_key)
            assert not client.slhdsa_verify(created.key_id, msg, bad, ctx)
            assert not client.slhdsa_verify(imported.key_id, msg + b"x", theirs, ctx)
            tally(f"{alg.name} modified signature/message refused by both", 2)
