"""The C fast path for AES (src/c/service/aes_fast.c) answers exactly as the Python path would.

A client's first successful AES request on a key goes through Python, which then grants
the key to the client's session; later ones are answered in C. These tests check that
the C answers are right (independent decryption with pyca/cryptography), that every
failure still gets its status, and that counters, limits, rate limits, deletion and
replay detection hold whichever path answers. The service logs every request it answers
in Python at debug level, which is how the tests see which path was taken.
"""
import concurrent.futures
import os
import struct
import threading
import time

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from support.rawclient import RawClient
from support.service import status_of
from wvds.client import Client
from wvds.protocol.constants import Algorithm, KeyFormat, KeyUsage, RequestType, Status
from wvds.protocol.header import pack_request, parse_response
from wvds.protocol.payloads import AesDecryptRequest, AesEncryptRequest

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()

KEY = bytes(range(32))


def python_answered(svc, rtype: str) -> int:
    """Requests of this type the Python dispatcher answered (its debug line per request)."""
    return sum(1 for line in svc.log().splitlines() if '"msg": "request",' in line and f'"type": "{rtype}"' in line)



def test_answers_match_an_independent_implementation(make_service):
    svc = make_service()
    with Client(svc.socket) as c:
        key = c.import_key(Algorithm.AES_256_GCM, KeyFormat.RAW, KEY).key_id
        before = python_answered(svc, "AES_ENCRYPT")
        sizes = [0, 1, 15, 16, 17, 255, 4096, 65536 - 6 - 28 - 100]
        sealed = [(c.encrypt(key, os.urandom(n), aad), n, aad) for n in sizes for aad in (b"", b"header", b"a" * 100)]
        assert python_answered(svc, "AES_ENCRYPT") == before + 1  # only the first one went through Python
        nonces = {s[:12] for s, _, _ in sealed}
        assert len(nonces) == len(sealed)  # provider-generated, never repeated
        for s, n, aad in sealed:
            pt = AESGCM(KEY).decrypt(s[:12], s[12:], aad)
            assert len(pt) == n and len(s) == n + 28
            assert c.decrypt(key, s, aad) == pt  # and back through the fast path
        assert python_answered(svc, "AES_DECRYPT") == 0  # the grant after the first encryption covers decrypt
        mine = AESGCM(KEY).encrypt(b"\x01" * 12, b"from elsewhere", b"ad")
        assert c.decrypt(key, b"\x01" * 12 + mine, b"ad") == b"from elsewhere"
        assert c.describe_key(key).uses == len(sealed)


def test_failures_keep_their_statuses(make_service):
    svc = make_service()
    with Client(svc.socket) as c, RawClient(svc.socket) as raw:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        enc_only = c.generate_key(Algorithm.AES_256_GCM, usage=KeyUsage.ENCRYPT).key_id
        good = c.encrypt(key, b"data", b"aad")
        c.decrypt(key, good, b"aad")  # both operations granted now
        c.encrypt(enc_only, b"x")
        tampered = good[:-1] + bytes([good[-1] ^ 1])
        assert status_of(c.decrypt, key, tampered, b"aad") == Status.DECRYPTION_FAILED
        assert status_of(c.decrypt, key, good, b"other aad") == Status.DECRYPTION_FAILED
        assert status_of(c.decrypt, key, good[:27], b"") == Status.INVALID_PAYLOAD
        assert status_of(c.decrypt, enc_only, c.encrypt(enc_only, b"x")) == Status.PERMISSION_DENIED
        frame = pack_request(RequestType.AES_ENCRYPT, AesEncryptRequest(key, b"", b"x").encode())
        assert parse_response(raw.roundtrip(frame[:3] + b"\x01" + frame[4:]))[0] == Status.INVALID_HEADER  # flags
        assert parse_response(raw.roundtrip(frame[:-1]))[0] == Status.INVALID_PAYLOAD  # length mismatch (as the original)
        short = pack_request(RequestType.AES_ENCRYPT, struct.pack("<IH", key, 50) + b"x")  # AAD longer than the payload
        assert parse_response(raw.roundtrip(short))[0] == Status.INVALID_PAYLOAD
        c.delete_key(key)
        assert status_of(c.encrypt, key, b"x") == Status.KEY_NOT_FOUND
        assert status_of(c.decrypt, key, good, b"aad") == Status.KEY_NOT_FOUND
        assert c.encrypt(enc_only, b"still works")


def test_invocation_limit_and_counter_reservations(make_service):
    svc = make_service(limits={"gcm_invocation_limit": 4100})  # past the first reservation block (4096)
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        for _ in range(4100):
            c.encrypt(key, b"x")
        assert status_of(c.encrypt, key, b"x") == Status.KEY_EXHAUSTED
        assert c.describe_key(key).uses == 4100
    # The C counter reached the end of the reservation and Python persisted the next block.
    # (Persistence across restarts, with every key store: tests/keystore/test_backends.py.)
    assert python_answered(svc, "AES_ENCRYPT") == 3  # first use, the reservation, the refusal


def test_rate_limit_applies_to_the_fast_path(make_service):
    svc = make_service(limits={"rate_limit": {"requests_per_second": 1, "burst": 5, "cooldown_ms": 5000}})
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id  # token 1
        results = [status_of(c.encrypt, key, b"x") for _ in range(8)]  # tokens 2..5, then refused
        assert results[:4] == [Status.SUCCESS] * 4
        assert results[4:] == [Status.RATE_LIMITED] * 4


def test_random_is_answered_in_c(make_service):
    """RANDOM never reaches the Python dispatcher unless it is malformed; the bytes are fresh every time."""
    svc = make_service()
    with Client(svc.socket) as c, RawClient(svc.socket) as raw:
        sizes = [0, 1, 16, 31, 1000, 65536]
        assert [len(c.random(n)) for n in sizes] == sizes
        draws = {c.random(16) for _ in range(500)}
        assert len(draws) == 500
        big = c.random(65536)
        assert len(set(big)) == 256 and big.count(0) < 400  # 256 expected: not a zeroed or stale area
        assert python_answered(svc, "RANDOM") == 0
        frame = pack_request(RequestType.RANDOM, struct.pack("<I", 16))
        assert parse_response(raw.roundtrip(frame))[0] == Status.SUCCESS  # a second connection: C at once
        too_big = pack_request(RequestType.RANDOM, struct.pack("<I", 65537))
        assert parse_response(raw.roundtrip(too_big))[0] == Status.PAYLOAD_TOO_LARGE
        for bad in (b"", b"\x10\0\0", b"\x10\0\0\0\0"):
            assert parse_response(raw.roundtrip(pack_request(RequestType.RANDOM, bad)))[0] == Status.INVALID_PAYLOAD
        assert parse_response(raw.roundtrip(frame[:3] + b"\x01" + frame[4:]))[0] == Status.INVALID_HEADER  # flags
        assert parse_response(raw.roundtrip(frame[:-1]))[0] == Status.INVALID_PAYLOAD  # length mismatch
        assert python_answered(svc, "RANDOM") == 4  # the bad payloads (a bad header is logged without a type)


def test_rate_limit_applies_to_random_in_c(make_service):
    svc = make_service(limits={"rate_limit": {"requests_per_second": 1, "burst": 5, "cooldown_ms": 5000}})
    with Client(svc.socket) as c:
        results = [status_of(c.random, 16) for _ in range(8)]
        assert results == [Status.SUCCESS] * 5 + [Status.RATE_LIMITED] * 3


def test_replay_detection_stays_exact(make_service):
    """Replay protection is the default and holds on the C path: the window lives in C (replay.c)."""
    svc = make_service()
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        assert c.describe_key(key).usage & KeyUsage.REPLAY_PROTECT
        sealed = [c.encrypt(key, b"msg %d" % i) for i in range(20)]
        for s in sealed:
            assert c.decrypt(key, s).startswith(b"msg")
        assert python_answered(svc, "AES_DECRYPT") == 0  # accepted and recorded in C
        for s in sealed:
            assert status_of(c.decrypt, key, s) == Status.NONCE_REUSE
        assert python_answered(svc, "AES_DECRYPT") == 20  # C hands a replay to Python, which says why
        assert 'nonce replayed on key' in svc.log()


def test_grants_belong_to_one_session(make_service):
    svc = make_service()
    with Client(svc.socket) as c, RawClient(svc.socket) as raw:
        key = c.generate_key(Algorithm.AES_256_GCM, KeyUsage.REPLAYABLE).key_id  # one message, decrypted twice
        sealed = c.encrypt(key, b"x")
        c.decrypt(key, sealed)
        # Another connection of the same uid goes through Python first, and gets the same answers.
        before = python_answered(svc, "AES_DECRYPT")
        frame = pack_request(RequestType.AES_DECRYPT, AesDecryptRequest(key, b"", sealed).encode())
        assert parse_response(raw.roundtrip(frame)) == (Status.SUCCESS, b"x")
        assert python_answered(svc, "AES_DECRYPT") == before + 1


def test_stop_during_a_fast_path_flood(make_service):
    """SIGTERM while a client keeps the fast path busy: a clean exit, and the client hears about it."""
    svc = make_service()
    c = Client(svc.socket, timeout_ms=5000)
    key = c.generate_key(Algorithm.AES_256_GCM).key_id
    outcomes = []

    def flood():
        while True:
            try:
                c.encrypt(key, b"x" * 1000)
            except Exception as e:  # noqa: BLE001  SHUTTING_DOWN or the connection going away
                outcomes.append(getattr(e, "status", type(e).__name__))
                return

    t = threading.Thread(target=flood)
    t.start()
    time.sleep(0.5)
    assert svc.stop() == 0
    t.join(10)
    assert not t.is_alive() and outcomes
    c.close()


@pytest.mark.parametrize("slots", [1, 4])
def test_many_requests_in_flight(make_service, slots):
    """Several threads on one connection: every answer right, none lost."""
    svc = make_service()
    with Client(svc.socket, slots=slots) as c:
        key = c.import_key(Algorithm.AES_256_GCM, KeyFormat.RAW, KEY).key_id
        msgs = [os.urandom(i * 97 % 3000) for i in range(400)]
        with concurrent.futures.ThreadPoolExecutor(slots) as pool:
            sealed = list(pool.map(lambda m: c.encrypt(key, m, b"t"), msgs))
        assert [AESGCM(KEY).decrypt(s[:12], s[12:], b"t") for s in sealed] == msgs
