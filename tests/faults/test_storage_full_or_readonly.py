"""The key store's file system fills up or turns read-only while the service runs.

The file key store lives on a small tmpfs mounted by the test (root only). With the disk full, and
then with the key directory remounted read-only (a bind mount), every operation that must write answers
STORAGE_ERROR at once — key generation, import, deletion, and the AES encryption that has to
persist the next counter reservation first — and changes nothing: no half-written key, the old
keys keep working, the encryption is not performed (uses unchanged), the service keeps serving.
When space comes back or the file system is writable again, the same operations succeed, and
after a restart every key is intact with its counter not below anything seen before.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from wvds.client import Client, ServiceStatusError
from wvds.crypto_service.keys import COUNTER_BLOCK
from wvds.protocol.constants import Algorithm, KeyFormat, Status

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs / remounting read-only needs root "
                                                          "(CI runs as root)")


def _status(call) -> Status:
    with pytest.raises(ServiceStatusError) as e:
        call()
    return e.value.status


@pytest.fixture
def tmpfs(tmp_path):
    """A 256 KiB tmpfs holding keystore/ whose keys/ is also a bind mount of itself.

    Remounting a file system read-only fails while a file on it is open for writing (the service holds
    its lock file open), so "read-only" is done to the keys/ bind mount only: every key write, rename
    and unlink happens there."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)], check=True)
    keys = mnt / "keystore" / "keys"
    keys.mkdir(mode=0o700, parents=True)
    keys.parent.chmod(0o700)  # mkdir(parents=True) made it with the umask
    subprocess.run(["mount", "--bind", str(keys), str(keys)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(keys)], check=False)
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt) -> None:
    """Take every free byte of the file system (the filler's own write stops at ENOSPC)."""
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def _at_reservation_edge(c: Client, key: int) -> None:
    """Encrypt until the next encryption needs a new counter reservation (a key-file write)."""
    uses = c.describe_key(key).uses
    for _ in range(COUNTER_BLOCK - uses % COUNTER_BLOCK if uses % COUNTER_BLOCK else 0):
        c.encrypt(key, b"")
    assert c.describe_key(key).uses % COUNTER_BLOCK == 0


def _refused_writes(c: Client, aes: int, dsa: int, expect: Status) -> None:
    keys_before = sorted(k for k, _ in c.list_keys())
    uses = c.describe_key(aes).uses
    assert _status(lambda: c.generate_key(Algorithm.ML_DSA_44)) == expect
    assert _status(lambda: c.import_key(Algorithm.AES_256_GCM, KeyFormat.RAW, b"k" * 32)) == expect
    assert _status(lambda: c.encrypt(aes, b"needs a reservation")) == expect
    assert c.describe_key(aes).uses == uses  # refused before encrypting: the count did not move
    assert sorted(k for k, _ in c.list_keys()) == keys_before
    assert c.decrypt(aes, SEALED[aes].pop()) == b"before"  # old keys keep working (the window is preallocated)
    assert len(c.mldsa_sign(dsa, b"still signs")) == 2420


SEALED: dict[int, list[bytes]] = {}  # each decrypted once: the keys are replay-protected


@needs_root
def test_disk_full_and_read_only_key_store(file_service, tmpfs):
    svc = file_service(directory=tmpfs / "keystore", limits={"replay_window": 64})  # 8 KiB windows: small fs
    with svc, Client(svc.socket) as c:
        aes = c.generate_key(Algorithm.AES_256_GCM).key_id
        dsa = c.generate_key(Algorithm.ML_DSA_44).key_id
        victim = c.generate_key(Algorithm.ECDSA_P256).key_id
        SEALED[aes] = [c.encrypt(aes, b"before") for _ in range(4)]
        _at_reservation_edge(c, aes)
        seen_uses = c.describe_key(aes).uses

        _fill(tmpfs)  # --- disk full
        _refused_writes(c, aes, dsa, Status.STORAGE_ERROR)
        (tmpfs / "filler").unlink()
        assert len(c.encrypt(aes, b"space is back")) == 13 + 28
        seen_uses = c.describe_key(aes).uses
        _at_reservation_edge(c, aes)
        seen_uses = c.describe_key(aes).uses

        keys = tmpfs / "keystore" / "keys"
        subprocess.run(["mount", "-o", "remount,bind,ro", str(keys)], check=True)  # --- read-only
        try:
            _refused_writes(c, aes, dsa, Status.STORAGE_ERROR)
            assert _status(lambda: c.delete_key(victim)) == Status.STORAGE_ERROR
            assert victim in {k for k, _ in c.list_keys()}
        finally:
            subprocess.run(["mount", "-o", "remount,bind,rw", str(keys)], check=True)
        c.delete_key(victim)
        new = c.generate_key(Algorithm.AES_256_GCM).key_id
        c.encrypt(aes, b"writable again")
        seen_uses = c.describe_key(aes).uses
        assert c.status()["keystore"]["unreadable_keys"] == []
    with svc, Client(svc.socket) as c:  # restart: everything as acknowledged
        assert sorted(k for k, _ in c.list_keys()) == sorted([aes, dsa, new])
        assert c.describe_key(aes).uses >= seen_uses
        assert c.decrypt(aes, SEALED[aes].pop()) == b"before"
    leftovers = [p.name for p in (tmpfs / "keystore" / "keys").iterdir() if p.name.startswith(".")]
    assert leftovers == []
