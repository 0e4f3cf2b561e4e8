"""Replay protection across restarts, on every backend, and for AES keys held by the PKCS#11 token
(docs/replay.md). The window lives beside the key files; the epoch in the key's record.

Also: a key store written by release 0.2.0 (tests/keystore/data/store-0.2.0, make_0_2_store.py) keeps its
keys' behaviour; a lost or damaged window refuses what it can no longer vouch for.
"""
from __future__ import annotations

import struct

import pytest

from support.keystore_backends import copy_fixture_store, make_backend
from support.service import status_of
from wvds.client import Client
from wvds.protocol.constants import Algorithm, KeyUsage, Status

# Also against the x86_64 binary (not the aarch64 one: the token and TPM libraries here are x86_64).
pytestmark = pytest.mark.binaries(native_only=True)

AES = Algorithm.AES_256_GCM



def epoch(sealed: bytes) -> int:
    return struct.unpack(">I", sealed[:4])[0]


def test_replays_stay_refused_after_restarts(backend):
    svc = backend.service()
    svc.start()
    with Client(svc.socket) as c:
        key = c.generate_key(AES).key_id
        run0 = [c.encrypt(key, b"run0 %d" % i) for i in range(10)]
        for s in run0[:5]:
            c.decrypt(key, s)
    window = backend.directory / "replay" / f"{key:08x}.win"
    assert window.stat().st_mode & 0o777 == 0o600
    svc.stop()
    svc.start()
    with Client(svc.socket) as c:
        for s in run0[:5]:
            assert status_of(c.decrypt, key, s) == Status.NONCE_REUSE
        for i, s in enumerate(run0[5:], 5):  # accepted: the window keeps the earlier run's stream
            assert c.decrypt(key, s) == b"run0 %d" % i
        run1 = [c.encrypt(key, b"run1 %d" % i) for i in range(3)]
        assert {epoch(s) for s in run0} == {0} and {epoch(s) for s in run1} == {1}
        assert c.decrypt(key, run1[0]) == b"run1 0"
    svc.stop()
    svc.start()
    with Client(svc.socket) as c:
        for s in run0 + run1[:1]:
            assert status_of(c.decrypt, key, s) == Status.NONCE_REUSE
        run2 = c.encrypt(key, b"run2")  # epoch 2: the third stream; 2 are tracked, so epoch 0 goes
        assert epoch(run2) == 2 and c.decrypt(key, run2) == b"run2"
        assert c.decrypt(key, run1[1]) == b"run1 1"
        c.delete_key(key)
    assert not window.exists()
    svc.stop()


def test_aes_keys_in_the_token_are_protected_the_same(request, tmp_path, fips_env, programs):
    hsm = make_backend("pkcs11", request, tmp_path, fips_env, programs, native=["aes-256-gcm"])
    svc = hsm.service()
    svc.start()
    with Client(svc.socket) as c:
        key = c.generate_key(AES).key_id
        assert b'"native":true' in (hsm.directory / "keys" / f"{key:08x}.key").read_bytes()  # in the token
        sealed = [c.encrypt(key, b"hsm %d" % i) for i in range(6)]
        assert {epoch(s) for s in sealed} == {0}
        counters = [struct.unpack(">Q", s[4:12])[0] for s in sealed]
        assert counters == [counters[0] + i for i in range(6)]
        for s in sealed[:3]:
            c.decrypt(key, s)
            assert status_of(c.decrypt, key, s) == Status.NONCE_REUSE
    svc.stop()
    svc.start()
    with Client(svc.socket) as c:
        for s in sealed[:3]:
            assert status_of(c.decrypt, key, s) == Status.NONCE_REUSE
        for s in sealed[3:]:
            assert c.decrypt(key, s).startswith(b"hsm")
        assert epoch(c.encrypt(key, b"next run")) == 1
    svc.stop()


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_a_lost_window_refuses_what_it_cannot_vouch_for(request, tmp_path, fips_env, programs, damage):
    fb = make_backend("file", request, tmp_path, fips_env, programs)
    svc = fb.service()
    svc.start()
    with Client(svc.socket) as c:
        key = c.generate_key(AES).key_id
        sealed = [c.encrypt(key, b"%d" % i) for i in range(4)]
        c.decrypt(key, sealed[0])
    svc.stop()
    window = fb.directory / "replay" / f"{key:08x}.win"
    if damage == "missing":
        window.unlink()
    elif damage == "truncated":
        window.write_bytes(window.read_bytes()[:100])
    else:
        window.write_bytes(b"\xff" * window.stat().st_size)
    svc.start()
    with Client(svc.socket) as c:
        for s in sealed:  # accepted or not before: all of epoch 0 is refused now
            assert status_of(c.decrypt, key, s) == Status.NONCE_REUSE
        fresh = c.encrypt(key, b"new run")
        assert epoch(fresh) == 1 and c.decrypt(key, fresh) == b"new run"
    assert "replay window" in svc.log()
    if damage != "missing":
        assert window.with_name(window.name + ".unusable").exists()
    svc.stop()


def test_keys_of_release_0_2_0_keep_their_behaviour(request, tmp_path, fips_env, programs):
    store, secret, manifest = copy_fixture_store("store-0.2.0", tmp_path)
    fb = make_backend("file", request, tmp_path, fips_env, programs)
    svc = fb.service(directory=str(store), secret_file=str(secret))
    plain, protected = manifest["keys"]["plain"], manifest["keys"]["protected"]
    for run in range(2):
        svc.start()
        with Client(svc.socket) as c:
            assert c.describe_key(plain["key_id"]).usage == plain["usage"]  # not migrated behind anyone's back
            assert c.describe_key(protected["key_id"]).usage == protected["usage"]
            for i, s in enumerate(plain["sealed"]):  # unprotected: decrypts again and again
                for _ in range(2):
                    assert c.decrypt(plain["key_id"], bytes.fromhex(s), b"ad") == b"0.2.0 plain %d" % i
            for i, s in enumerate(protected["sealed"]):  # its in-memory set, as in 0.2.0: refused within a run
                assert c.decrypt(protected["key_id"], bytes.fromhex(s), b"ad") == b"0.2.0 protected %d" % i
                assert status_of(c.decrypt, protected["key_id"], bytes.fromhex(s), b"ad") == Status.NONCE_REUSE
            for kid in (plain["key_id"], protected["key_id"]):  # still random nonces: no common fixed field
                assert len({c.encrypt(kid, b"x")[:4] for _ in range(5)}) > 1
            new = c.generate_key(AES).key_id
            assert c.describe_key(new).usage & KeyUsage.REPLAY_PROTECT
        svc.stop()
    assert not (store / "replay" / f"{plain['key_id']:08x}.win").exists()
