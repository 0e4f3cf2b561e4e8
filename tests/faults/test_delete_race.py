"""A deleted key stays deleted (crypto-erase): an operation racing KEY_DELETE can neither write the
key's record back nor keep using its bytes after the deletion was answered.

The race is made deterministic with a barrier inside the key store's save (save_barrier.py): the
first encryption after a restart persists a new counter reservation, and is held there while a
second client deletes the key."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from support.service import RestartableService
from support.targets import ROOT
from wvds.client import Client, ServiceStatusError
from wvds.protocol.constants import Algorithm, Status


class BarrierService(RestartableService):
    def command(self) -> list[str]:
        return [sys.executable, str(Path(__file__).with_name("save_barrier.py")), "--config", str(self.config_path)]


@pytest.fixture
def barrier_service(file_service, tmp_path):
    """(service with a key made before its start, that key's id, the barrier directory)."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    plain = file_service(extra_env={"WVDS_TEST_SAVE_BARRIER": str(barrier)})
    svc = BarrierService(plain.target, {}, plain.workdir, plain.config)
    svc.env = dict(plain.env, PYTHONPATH=str(ROOT / "src"))
    svc.start()
    try:
        with Client(svc.socket) as c:
            key_id = c.generate_key(Algorithm.AES_256_GCM, label="erase-me").key_id
        svc.stop()
        svc.start()  # a loaded key's first use persists a new counter reservation: that save is the barrier
        (barrier / "armed").touch()
        yield svc, key_id, barrier
    finally:
        (barrier / "go").touch()
        if svc.proc is not None:
            svc.stop(timeout=30)


def wait_for(predicate, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_encryption_racing_a_deletion_does_not_bring_the_key_back(barrier_service):
    svc, key_id, barrier = barrier_service
    results: dict[str, object] = {}

    def encrypt():
        with Client(svc.socket) as a:
            try:
                results["encrypt"] = a.encrypt(key_id, b"in flight")
            except ServiceStatusError as e:
                results["encrypt"] = e.status

    def delete():
        with Client(svc.socket) as b:
            b.delete_key(key_id)
            results["deleted_at"] = time.monotonic()

    a = threading.Thread(target=encrypt)
    a.start()
    assert wait_for(lambda: (barrier / f"saving-{key_id:08x}").exists()), svc.log()
    b = threading.Thread(target=delete)
    b.start()
    b.join(1.0)
    # The deletion waits for the operation in progress: it is not answered while the save is held.
    assert "deleted_at" not in results, "KEY_DELETE was answered while an encryption was still saving the key"
    (barrier / "armed").unlink()
    released = time.monotonic()
    (barrier / "go").touch()
    a.join(30)
    b.join(30)
    assert results["deleted_at"] >= released
    assert not isinstance(results["encrypt"], Status), results  # it was first: it completes
    with Client(svc.socket) as c:
        try:
            c.encrypt(key_id, b"after")
            raise AssertionError("a deleted key still encrypts")
        except ServiceStatusError as e:
            assert e.status == Status.KEY_NOT_FOUND
    svc.stop()
    assert not list(Path(svc.config["keystore"]["directory"]).rglob(f"*{key_id:08x}*"))
    svc.start()
    with Client(svc.socket) as c:
        assert key_id not in [k for k, _ in c.list_keys()], "the deleted key is back after a restart"
