"""The C fast path for public-key requests (src/c/service/pkey_fast.c) answers exactly as the Python path would.

A client's first successful signature, verify, encaps or decaps with a stored key goes through Python, which
then grants the key to the client's session; later ones that need no new key are answered in C: signatures
(keys of the FIPS provider), verifications that verify, ML-KEM encaps/decaps returning the shared secret.
Checked here: the answers (ECDSA against pyca/cryptography, ML-DSA signatures and ML-KEM secrets against the
Python path of a fresh session), that every failure keeps its status, that policy, deletion, rate limits,
use counts and sessions hold whichever path answers, and that overlapping requests still get answered.
The service logs every request it answers in Python at debug level: that is how the tests see the path.
"""
import concurrent.futures
import os
import struct
import threading

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from support.rawclient import RawClient
from support.service import status_of
from wvds.client import Client
from wvds.protocol.constants import Algorithm, HashAlg, KeyFormat, KeyUsage, RequestType, Status
from wvds.protocol.header import pack_request, parse_response
from wvds.protocol.payloads import KeyRef, MldsaVerifyRequest, MlkemDecapsRequest, MlkemEncapsRequest

pytestmark = pytest.mark.binaries()

SEED = bytes(range(64))  # an ML-KEM-768 key's seed (d || z)


def python_answered(svc, rtype: str) -> int:
    """Requests of this type the Python dispatcher answered (its debug line per request)."""
    return sum(1 for line in svc.log().splitlines() if '"msg": "request",' in line and f'"type": "{rtype}"' in line)


@pytest.mark.parametrize("algorithm", [Algorithm.ML_DSA_44, Algorithm.ML_DSA_65, Algorithm.ML_DSA_87])
def test_mldsa_verify_is_answered_in_c(make_service, algorithm):
    svc = make_service()
    with Client(svc.socket) as c:
        key = c.generate_key(algorithm).key_id
        msgs = [(os.urandom(n), ctx) for n in (0, 1, 64, 5000, 60000) for ctx in (b"", b"c", b"x" * 255)]
        sigs = [c.mldsa_sign(key, m, ctx) for m, ctx in msgs]
        assert all(c.mldsa_verify(key, m, s, ctx) for (m, ctx), s in zip(msgs, sigs))
        assert python_answered(svc, "MLDSA_VERIFY") == 0  # granted by the first signature (SIGN and VERIFY)
        m, ctx = msgs[7]  # 64 bytes, context b"c"
        bad = [(m + b"!", sigs[7], ctx), (m, sigs[7], ctx + b"?"), (m, sigs[8], ctx), (m, sigs[7][:-1], ctx),
               (m, sigs[7] + b"\0", ctx), (m, bytes(len(sigs[7])), ctx)]
        assert [c.mldsa_verify(key, *b) for b in bad] == [False] * len(bad)
        assert python_answered(svc, "MLDSA_VERIFY") == len(bad)  # C leaves every failure to Python
        public = c.export_public(key).public_key
        assert c.mldsa_verify(KeyRef(algorithm=algorithm, public_key=public), m, sigs[7], ctx)  # inline: Python
        assert python_answered(svc, "MLDSA_VERIFY") == 1 + len(bad)
        assert status_of(c.slhdsa_verify, key, m, sigs[7], ctx) == Status.UNSUPPORTED_ALGORITHM  # wrong request type
        c.delete_key(key)
        assert status_of(c.mldsa_verify, key, m, sigs[7], ctx) == Status.KEY_NOT_FOUND


def _python_verify(svc, key: int, message: bytes, signature: bytes) -> bool:
    """The Python path's verdict: a new session's first request never takes the C path."""
    with RawClient(svc.socket) as raw:
        frame = pack_request(RequestType.MLDSA_VERIFY, MldsaVerifyRequest(KeyRef(key_id=key), message, signature,
                                                                          b"ctx").encode())
        return parse_response(raw.roundtrip(frame))[0] == Status.SUCCESS


def test_mldsa_signatures_are_made_in_c(make_service):
    svc = make_service()
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.ML_DSA_65).key_id
        msgs = [os.urandom(n) for n in (0, 1, 100, 60000)] + [b"same"] * 3  # (verify carries the signature too)
        sigs = [c.mldsa_sign(key, m, b"ctx") for m in msgs]
        assert python_answered(svc, "MLDSA_SIGN") == 1 and all(len(s) == 3309 for s in sigs)
        assert len(set(sigs[-3:])) == 3  # hedged: fresh randomness in every signature, in C too
        assert all(_python_verify(svc, key, m, s) for m, s in zip(msgs, sigs))
        assert not _python_verify(svc, key, b"other", sigs[-1])
        assert c.describe_key(key).uses == len(msgs)  # signatures made in C are counted
        assert status_of(c.mldsa_sign, key, b"m", b"x" * 255) == Status.SUCCESS
        assert status_of(c.slhdsa_sign, key, b"m") == Status.UNSUPPORTED_ALGORITHM
        c.delete_key(key)
        assert status_of(c.mldsa_sign, key, b"m") == Status.KEY_NOT_FOUND


CURVES = pytest.mark.parametrize("algorithm,curve", [(Algorithm.ECDSA_P256, ec.SECP256R1()),
                                                      (Algorithm.ECDSA_P384, ec.SECP384R1())])


def _ecdsa_key(algorithm, curve):
    """A pyca/cryptography key (an independent ECDSA), its raw scalar for KEY_IMPORT, and (HashAlg, pyca hash) for
    every hash the protocol names, HASH_DEFAULT being the curve's."""
    private = ec.generate_private_key(curve)
    scalar = private.private_numbers().private_value.to_bytes(curve.key_size // 8, "big")
    default = hashes.SHA256() if algorithm == Algorithm.ECDSA_P256 else hashes.SHA384()
    cases = [(HashAlg.DEFAULT, default), (HashAlg.SHA256, hashes.SHA256()), (HashAlg.SHA384, hashes.SHA384()),
             (HashAlg.SHA512, hashes.SHA512())]
    return private, scalar, cases


@CURVES
def test_ecdsa_signatures_are_made_in_c(make_service, algorithm, curve):
    """Checked with pyca/cryptography: every hash, prehashed or not."""
    svc = make_service()
    private, scalar, cases = _ecdsa_key(algorithm, curve)
    with Client(svc.socket) as c:
        key = c.import_key(algorithm, KeyFormat.RAW, scalar).key_id
        data = os.urandom(300)
        for hash_alg, h in cases:
            private.public_key().verify(c.ecdsa_sign(key, data, hash_alg), data, ec.ECDSA(h))
            digest = hashes.Hash(h)
            digest.update(data)
            d = digest.finalize()
            private.public_key().verify(c.ecdsa_sign(key, d, hash_alg, 1), d, ec.ECDSA(Prehashed(h)))
        assert python_answered(svc, "ECDSA_SIGN") == 1
        assert status_of(c.ecdsa_sign, key, data, HashAlg.SHA256, 1) == Status.INVALID_PAYLOAD  # not a digest
        assert status_of(c.ecdsa_sign, key, data, HashAlg.DEFAULT, 2) == Status.INVALID_PAYLOAD  # unknown flag
        assert python_answered(svc, "ECDSA_SIGN") == 3
        assert c.describe_key(key).uses == 8


def test_slhdsa_verify_is_answered_in_c(make_service):
    svc = make_service()
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.SLH_DSA_SHA2_128F).key_id
        sig = c.slhdsa_sign(key, b"firmware", b"ctx")
        assert all(c.slhdsa_verify(key, b"firmware", sig, b"ctx") for _ in range(3))
        assert not c.slhdsa_verify(key, b"firmware", sig, b"")
        assert python_answered(svc, "SLHDSA_VERIFY") == 1  # the failure (the signature granted VERIFY)
        assert status_of(c.mldsa_verify, key, b"firmware", sig, b"ctx") == Status.UNSUPPORTED_ALGORITHM


@CURVES
def test_ecdsa_verify_is_answered_in_c(make_service, algorithm, curve):
    """Signatures made by pyca/cryptography, every hash, prehashed or not."""
    svc = make_service()
    private, scalar, cases = _ecdsa_key(algorithm, curve)
    default = cases[0][1]
    with Client(svc.socket) as c:
        key = c.import_key(algorithm, KeyFormat.RAW, scalar).key_id
        data = os.urandom(300)
        for hash_alg, h in cases:
            assert c.ecdsa_verify(key, data, private.sign(data, ec.ECDSA(h)), hash_alg)
            digest = hashes.Hash(h)
            digest.update(data)
            d = digest.finalize()
            assert c.ecdsa_verify(key, d, private.sign(d, ec.ECDSA(Prehashed(h))), hash_alg, flags=1)
        assert python_answered(svc, "ECDSA_VERIFY") == 1
        sig = private.sign(data, ec.ECDSA(default))
        assert not c.ecdsa_verify(key, data + b"x", sig)
        assert not c.ecdsa_verify(key, data, sig, HashAlg.SHA512)  # made with another hash
        assert not c.ecdsa_verify(key, data, sig[:-1])  # bad DER
        assert status_of(c.ecdsa_verify, key, data, sig, HashAlg.DEFAULT, 2) == Status.INVALID_PAYLOAD  # flag
        assert status_of(c.ecdsa_verify, key, data[:31], sig, HashAlg.SHA256, 1) == Status.INVALID_PAYLOAD
        assert python_answered(svc, "ECDSA_VERIFY") == 6


def _python_decaps(svc, key: int, ct: bytes) -> bytes:
    """The secret the Python path gives: a new session's first request never takes the C path."""
    with RawClient(svc.socket) as raw:
        frame = pack_request(RequestType.MLKEM_DECAPS, MlkemDecapsRequest(key, ct, 1).encode())
        status, payload = parse_response(raw.roundtrip(frame))
    assert status == Status.SUCCESS and payload[:5] == struct.pack("<IB", 0, 32)
    return payload[5:]


def test_mlkem_returning_the_secret_is_answered_in_c(make_service):
    svc = make_service()
    with Client(svc.socket) as c:
        usage = KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET
        key = c.import_key(Algorithm.ML_KEM_768, KeyFormat.SEED, SEED, usage).key_id
        sealed = [c.mlkem_encaps(key, return_secret=True) for _ in range(10)]
        assert all(r.key_id == 0 and len(r.ciphertext) == 1088 and len(r.secret) == 32 for r in sealed)
        assert len({r.secret for r in sealed}) == 10
        assert [c.mlkem_decaps(key, r.ciphertext, return_secret=True).secret for r in sealed] == \
            [r.secret for r in sealed]
        # The grant after the first encapsulation covers decapsulation (the client's usage on the key).
        assert python_answered(svc, "MLKEM_ENCAPS") == 1 and python_answered(svc, "MLKEM_DECAPS") == 0
        for r in sealed[1:4]:  # C encapsulated, the Python path decapsulates the same
            assert _python_decaps(svc, key, r.ciphertext) == r.secret
        wrong = bytes(1088)  # implicit rejection: a pseudo-random secret, the same on both paths
        assert c.mlkem_decaps(key, wrong, return_secret=True).secret == _python_decaps(svc, key, wrong)
        assert python_answered(svc, "MLKEM_DECAPS") == 4
        # What makes a key, or is malformed, stays in Python.
        derived = c.mlkem_encaps(key)
        assert derived.key_id != 0 and derived.secret == b""
        assert c.mlkem_decaps(key, derived.ciphertext).key_id != 0
        ct = sealed[0].ciphertext
        assert status_of(c.mlkem_decaps, key, ct[:-1], True) == Status.INVALID_PAYLOAD
        assert status_of(c.mlkem_decaps, key, ct + b"\0", True) == Status.INVALID_PAYLOAD
        unknown_flag = MlkemEncapsRequest(KeyRef(key_id=key), 3).encode()
        assert c.transact(RequestType.MLKEM_ENCAPS, unknown_flag)[0] == Status.INVALID_PAYLOAD
        assert python_answered(svc, "MLKEM_ENCAPS") == 3 and python_answered(svc, "MLKEM_DECAPS") == 7
        c.delete_key(key)
        assert status_of(c.mlkem_decaps, key, ct, True) == Status.KEY_NOT_FOUND
        assert status_of(c.mlkem_encaps, key, True) == Status.KEY_NOT_FOUND


def test_policy_holds_on_the_c_path(make_service):
    """A key without RELEASE_SECRET never has a secret released, whichever path; without DECAPS no decaps."""
    svc = make_service()
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.ML_KEM_768, KeyUsage.ENCAPS | KeyUsage.DECAPS).key_id
        enc_only = c.generate_key(Algorithm.ML_KEM_768, KeyUsage.ENCAPS | KeyUsage.RELEASE_SECRET).key_id
        r = c.mlkem_encaps(key)  # granted now (ENCAPS, DECAPS), to make AES keys only
        c.mlkem_decaps(key, r.ciphertext)
        for _ in range(3):
            assert status_of(c.mlkem_encaps, key, True) == Status.PERMISSION_DENIED
            assert status_of(c.mlkem_decaps, key, r.ciphertext, True) == Status.PERMISSION_DENIED
        ct = c.mlkem_encaps(enc_only, return_secret=True).ciphertext
        assert c.mlkem_encaps(enc_only, return_secret=True).secret  # C
        assert status_of(c.mlkem_decaps, enc_only, ct, True) == Status.PERMISSION_DENIED
        verify_only = c.import_key(Algorithm.ML_DSA_65, KeyFormat.PUBLIC,
                                   c.export_public(c.generate_key(Algorithm.ML_DSA_65).key_id).public_key).key_id
        assert status_of(c.mlkem_encaps, verify_only, True) == Status.UNSUPPORTED_ALGORITHM


def test_rate_limit_applies_to_verify_in_c(make_service):
    svc = make_service(limits={"rate_limit": {"requests_per_second": 1, "burst": 8, "cooldown_ms": 5000}})
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.ML_DSA_44).key_id  # token 1
        sig = c.mldsa_sign(key, b"m")  # token 2
        results = [status_of(c.mldsa_verify, key, b"m", sig) for _ in range(9)]  # 3..8, then refused
        assert results == [Status.SUCCESS] * 6 + [Status.RATE_LIMITED] * 3


def test_a_request_c_gives_up_costs_one_token(make_service):
    """A failure on the C path goes to Python without a second rate-limit token: a client gets exactly as many
    answers as its bucket holds, failed signatures and tags included (each path alone: one token per request)."""
    limits = {"rate_limit": {"requests_per_second": 1, "burst": 8, "cooldown_ms": 5000}}
    with Client(make_service(limits=limits).socket) as c:
        key = c.generate_key(Algorithm.ML_DSA_44).key_id  # token 1
        sig = c.mldsa_sign(key, b"m")  # token 2, and the grant
        results = [status_of(c.mldsa_verify, key, b"other", sig) for _ in range(8)]  # C tries, Python answers
        assert results == [Status.SUCCESS] * 6 + [Status.RATE_LIMITED] * 2  # (False counts as SUCCESS here)
        assert c.transact(RequestType.MLDSA_VERIFY, MldsaVerifyRequest(KeyRef(key_id=key), b"m", sig).encode())[0] \
            == Status.RATE_LIMITED
    with Client(make_service(limits=limits).socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id  # token 1
        sealed = c.encrypt(key, b"x")  # token 2, and the grant
        tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
        results = [status_of(c.decrypt, key, tampered) for _ in range(8)]
        assert results == [Status.DECRYPTION_FAILED] * 6 + [Status.RATE_LIMITED] * 2


@pytest.mark.parametrize("slots", [1, 4])
def test_overlapping_requests(make_service, slots):
    """Several threads on one connection: C answers one at a time, overlapping ones go to the worker pool;
    every answer right either way."""
    svc = make_service()
    with Client(svc.socket, slots=slots) as c:
        usage = KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET
        kem = c.import_key(Algorithm.ML_KEM_768, KeyFormat.SEED, SEED, usage).key_id
        dsa = c.generate_key(Algorithm.ML_DSA_65).key_id
        sig = c.mldsa_sign(dsa, b"m")

        def work(i):
            if i % 2:
                return c.mldsa_verify(dsa, b"m", sig) and not c.mldsa_verify(dsa, b"n", sig)
            r = c.mlkem_encaps(kem, return_secret=True)
            return c.mlkem_decaps(kem, r.ciphertext, return_secret=True).secret == r.secret

        with concurrent.futures.ThreadPoolExecutor(slots) as pool:
            assert all(pool.map(work, range(200)))
    assert python_answered(svc, "MLDSA_VERIFY") >= 100  # every failed one, at least


def test_rewriting_a_verify_request_while_it_is_served(make_service):
    """The payload is copied out before it is parsed: a client flipping the signature length and the message
    gets a verdict on one snapshot, never a crash or a success for a message that was not signed."""
    svc = make_service()
    with Client(svc.socket) as owner:
        key = owner.generate_key(Algorithm.ML_DSA_44).key_id
        sig = owner.mldsa_sign(key, b"A" * 100)
    good = pack_request(RequestType.MLDSA_VERIFY, MldsaVerifyRequest(KeyRef(key_id=key), b"A" * 100, sig).encode())
    seen = {Status.SUCCESS: 0, Status.SIGNATURE_INVALID: 0}
    with RawClient(svc.socket) as raw:
        assert parse_response(raw.roundtrip(good))[0] == Status.SUCCESS  # granted now
        stop = threading.Event()
        offset = len(good) - 100  # the message's first byte

        def flipper():
            i = 0
            while not stop.is_set():
                i += 1
                raw.write_request_area(0, offset, b"B" if i & 1 else b"A")
                raw.write_request_area(0, 8 + 6, struct.pack("<H", len(sig) if i % 3 else 7))  # signature length

        t = threading.Thread(target=flipper)
        t.start()
        try:
            for _ in range(300):
                status, payload = parse_response(raw.roundtrip(good))
                assert status in seen and payload == b""
                seen[status] += 1
        finally:
            stop.set()
            t.join()
    with Client(svc.socket) as c:  # still serving, and the key still verifies
        assert c.mldsa_verify(key, b"A" * 100, sig) and not c.mldsa_verify(key, b"B" + b"A" * 99, sig)


def test_rewriting_the_key_of_a_verify_while_it_is_served(make_service):
    """C looks the grant up from its copy of the header, then copies the payload: a client flipping the key id
    between its granted key and a key it may not verify with gets the verdict of one snapshot - never a
    success with the key whose policy forbids it."""
    svc = make_service()
    with Client(svc.socket) as owner:
        granted = owner.generate_key(Algorithm.ML_DSA_44).key_id
        sign_only = owner.generate_key(Algorithm.ML_DSA_44, KeyUsage.SIGN).key_id
        sig = owner.mldsa_sign(sign_only, b"A" * 100)
        granted_sig = owner.mldsa_sign(granted, b"A" * 100)
        assert status_of(owner.mldsa_verify, sign_only, b"A" * 100, sig) == Status.PERMISSION_DENIED
    request = pack_request(RequestType.MLDSA_VERIFY,
                           MldsaVerifyRequest(KeyRef(key_id=granted), b"A" * 100, sig).encode())
    seen = {Status.SIGNATURE_INVALID: 0, Status.PERMISSION_DENIED: 0}
    with RawClient(svc.socket) as raw:
        grant = pack_request(RequestType.MLDSA_VERIFY,
                             MldsaVerifyRequest(KeyRef(key_id=granted), b"A" * 100, granted_sig).encode())
        assert parse_response(raw.roundtrip(grant))[0] == Status.SUCCESS  # granted now
        stop = threading.Event()

        def flipper():
            i = 0
            while not stop.is_set():
                i += 1
                raw.write_request_area(0, 8 + 1, struct.pack("<I", granted if i & 1 else sign_only))  # KeyRef's id

        t = threading.Thread(target=flipper)
        t.start()
        try:
            for _ in range(300):
                status, payload = parse_response(raw.roundtrip(request))
                assert status in seen and payload == b"", status
                seen[status] += 1
        finally:
            stop.set()
            t.join()
    with Client(svc.socket) as c:
        assert c.mldsa_verify(granted, b"A" * 100, granted_sig)
        assert status_of(c.mldsa_verify, sign_only, b"A" * 100, sig) == Status.PERMISSION_DENIED
