"""Replay protection (docs/replay.md): on by default, exact at the window's edge, opt-out per key.

The window is checked on both paths: a key's first decryption goes through Python, later ones are
answered in C, and a replay the C path sees goes to Python, which says why. Restarts, kill -9 and
the key-store backends are in tests/keystore/test_replay_restart.py and tests/faults/.
"""
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from support.service import status_of
from wvds.client import Client
from wvds.protocol.constants import Algorithm, KeyFormat, KeyUsage, Status

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()

AES = Algorithm.AES_256_GCM
WINDOW = 64



def logged(svc, text: str) -> int:
    """How often the service logged `text` (the reason of a refusal is in the log, not on the wire)."""
    return svc.log().count(text)


def counter(sealed: bytes) -> int:
    return struct.unpack(">Q", sealed[4:12])[0]


@pytest.fixture
def small_window(make_service):
    return make_service(limits={"replay_window": WINDOW})


def test_nonces_are_epoch_and_consecutive_counters(client):
    key = client.generate_key(AES).key_id
    d = client.describe_key(key)
    assert d.usage == KeyUsage.ENCRYPT | KeyUsage.DECRYPT | KeyUsage.REPLAY_PROTECT
    sealed = [client.encrypt(key, b"m") for _ in range(50)]  # the first in Python, the rest in C: one stream
    assert {s[:4] for s in sealed} == {b"\0\0\0\0"}  # epoch 0: the run that created the key
    first = counter(sealed[0])
    assert [counter(s) for s in sealed] == [(first + i) % 2**64 for i in range(50)]


def test_every_message_decrypts_once(client):
    key = client.generate_key(AES).key_id
    sealed = [client.encrypt(key, b"msg %d" % i, b"ad") for i in range(30)]
    for s in reversed(sealed):  # any order within the window
        assert client.decrypt(key, s, b"ad").startswith(b"msg")
    for s in sealed:
        assert status_of(client.decrypt, key, s, b"ad") == Status.NONCE_REUSE
    # A forgery with a fresh nonce is refused as such and does not enter the window.
    fresh = client.encrypt(key, b"late", b"ad")
    forged = fresh[:-1] + bytes([fresh[-1] ^ 1])
    assert status_of(client.decrypt, key, forged, b"ad") == Status.DECRYPTION_FAILED
    assert client.decrypt(key, fresh, b"ad") == b"late"


def test_window_edge(small_window):
    with Client(small_window.socket) as c:
        key = c.generate_key(AES).key_id
        sealed = [c.encrypt(key, b"%d" % i) for i in range(3 * WINDOW)]
        newest = len(sealed) - 1
        assert c.decrypt(key, sealed[newest]) == b"%d" % newest
        edge = newest - (WINDOW - 1)  # the oldest counter the window still covers
        assert c.decrypt(key, sealed[edge]) == b"%d" % edge
        old, replayed = "older than the replay window", "nonce replayed"
        assert status_of(c.decrypt, key, sealed[edge - 1]) == Status.NONCE_REUSE  # one older: never seen, refused
        assert (logged(small_window, old), logged(small_window, replayed)) == (1, 0)  # and the log says why
        assert status_of(c.decrypt, key, sealed[0]) == Status.NONCE_REUSE
        for i in range(edge + 1, newest):  # everything inside, out of order, exactly once
            assert c.decrypt(key, sealed[i]) == b"%d" % i
        for i in range(edge, newest + 1):
            assert status_of(c.decrypt, key, sealed[i]) == Status.NONCE_REUSE
        assert (logged(small_window, old), logged(small_window, replayed)) == (2, WINDOW)


def test_window_moves_with_the_newest_counter(small_window):
    """Interleaved: every message is decrypted once, in order, with the window sliding by 1 each time; then none
    again. A word of the window is reused every 32 counters: no stale bit may refuse a fresh one."""
    with Client(small_window.socket) as c:
        key = c.generate_key(AES).key_id
        for i in range(10 * WINDOW):
            s = c.encrypt(key, b"%d" % i)
            assert c.decrypt(key, s) == b"%d" % i
            assert status_of(c.decrypt, key, s) == Status.NONCE_REUSE


def test_opt_out_for_data_at_rest(client):
    key = client.generate_key(AES, KeyUsage.REPLAYABLE).key_id  # replay bits alone: default operations
    assert client.describe_key(key).usage == KeyUsage.ENCRYPT | KeyUsage.DECRYPT | KeyUsage.REPLAYABLE
    blob = client.encrypt(key, b"sealed config")
    for _ in range(5):
        assert client.decrypt(key, blob) == b"sealed config"
    both = KeyUsage.ENCRYPT | KeyUsage.DECRYPT | KeyUsage.REPLAY_PROTECT | KeyUsage.REPLAYABLE
    assert status_of(client.generate_key, AES, both) == Status.INVALID_PAYLOAD
    assert status_of(client.generate_key, Algorithm.ML_DSA_44, KeyUsage.REPLAYABLE) == Status.INVALID_PAYLOAD
    imported = client.import_key(AES, KeyFormat.RAW, os.urandom(32), KeyUsage.DECRYPT | KeyUsage.REPLAYABLE).key_id
    assert not client.describe_key(imported).usage & KeyUsage.REPLAY_PROTECT


def test_imported_keys_are_protected_and_check_foreign_senders(client):
    """A peer that follows the layout (epoch || counter) gets exact checking; its epochs are tracked like ours."""
    raw = os.urandom(32)
    key = client.import_key(AES, KeyFormat.RAW, raw, KeyUsage.DECRYPT).key_id
    assert client.describe_key(key).usage & KeyUsage.REPLAY_PROTECT
    peer = AESGCM(raw)
    nonces = [struct.pack(">IQ", 7, 1000 + i) for i in range(5)]
    sealed = [n + peer.encrypt(n, b"peer %d" % i, None) for i, n in enumerate(nonces)]
    for i, s in enumerate(sealed):
        assert client.decrypt(key, s) == b"peer %d" % i
        assert status_of(client.decrypt, key, s) == Status.NONCE_REUSE
    # Its next run (epoch 8), then a message of epoch 6, which no window tracks any more: too old.
    later = struct.pack(">IQ", 8, 5)
    assert client.decrypt(key, later + peer.encrypt(later, b"run 8", None)) == b"run 8"
    old = struct.pack(">IQ", 6, 5)
    assert status_of(client.decrypt, key, old + peer.encrypt(old, b"run 6", None)) == Status.NONCE_REUSE


def test_a_flood_of_distinct_nonces_uses_no_more_memory(small_window):
    """The window is a fixed-size mapping: 20 000 decryptions later the service's memory has not grown with
    them (the legacy in-memory set would hold WINDOW entries; the window file is 4 pages here)."""
    def rss_kib() -> int:
        for line in open(f"/proc/{small_window.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    with Client(small_window.socket) as c:
        key = c.generate_key(AES).key_id
        warm = [c.encrypt(key, b"x" * 64) for _ in range(2000)]
        for s in warm:
            c.decrypt(key, s)
        before = rss_kib()
        for _ in range(20):
            batch = [c.encrypt(key, b"x" * 64) for _ in range(1000)]
            for s in batch:
                c.decrypt(key, s)
        grown = rss_kib() - before
        assert grown < 2048, f"RSS grew by {grown} KiB over 20 000 distinct nonces"
        assert c.status()["replay_windows_bytes"] == 4096 + 4096  # header page + 2 streams x 3 words


def test_refused_after_a_restart(make_service, tmp_path):
    """The window is on disk beside the keys: a new process of the service refuses what the last one accepted
    (tests/faults/test_kill9_replay.py does the same with kill -9; tests/keystore/ with every backend)."""
    secret = tmp_path / "device.secret"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o600)
    keystore = {"backend": "file", "directory": str(tmp_path / "keystore"), "secret_file": str(secret)}
    first = make_service(keystore=keystore)
    with Client(first.socket) as c:
        key = c.generate_key(AES).key_id
        sealed = [c.encrypt(key, b"%d" % i) for i in range(40)]
        for s in sealed[:20]:
            c.decrypt(key, s)
    first.stop()
    second = make_service(keystore=keystore)
    with Client(second.socket) as c:
        for s in sealed[:20]:
            assert status_of(c.decrypt, key, s) == Status.NONCE_REUSE
        for i, s in enumerate(sealed[20:], 20):
            assert c.decrypt(key, s) == b"%d" % i
        later = c.encrypt(key, b"second run")
        assert later[:4] == b"\0\0\0\1" and c.decrypt(key, later) == b"second run"
