"""kill -9 of crypto_service at random instants during a stream of decryptions (docs/replay.md).

File key store. One run encrypts a pool of messages under a replay-protected key; then, round after
round, a client decrypts the pool in a shuffled order (first request through Python, the rest on the C
fast path) while the service is killed with SIGKILL at a random moment, and restarted. Checked against
what the client was told before each crash:
* every message the client got plaintext for is refused (NONCE_REUSE) after the restart: no replay
  after a crash;
* every message never decrypted still decrypts: no false positive, whatever instant the kill hit;
* the one in flight at the kill may go either way (its answer may have been lost after it was recorded),
  but only once.
"""
from __future__ import annotations

import random
import signal
import threading
import time

from wvds.client import Client, ServiceStatusError, TransportFailure
from wvds.protocol.constants import Algorithm, Status

ROUNDS = 5
POOL = 100_000


def _decrypt(sock: str, key: int, todo: list[int], sealed: list[bytes], accepted: set[int], inflight: list[int],
             errors: list[str], started: threading.Event) -> None:
    try:
        with Client(sock, timeout_ms=5000) as c:
            for n, i in enumerate(todo):
                if n == 100:
                    started.set()  # on the C fast path by now
                inflight[:] = [i]
                if c.decrypt(key, sealed[i]) != b"%d" % i:
                    errors.append(f"message {i}: wrong plaintext")
                accepted.add(i)
                inflight.clear()
    except TransportFailure:
        pass  # killed under us: expected
    except ServiceStatusError as e:
        errors.append(f"message {inflight}: {e.status.name}")


def test_no_replay_after_kill9_and_no_fresh_message_refused(file_service):
    svc = file_service()
    rnd = random.Random(4242)
    svc.start()
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        sealed = [c.encrypt(key, b"%d" % i) for i in range(POOL)]
    order = list(range(POOL))
    rnd.shuffle(order)  # out of order, but all within the window (1 048 576)
    accepted: set[int] = set()
    undecided: set[int] = set()  # in flight at a kill
    for _ in range(ROUNDS):
        todo = [i for i in order if i not in accepted and i not in undecided]
        inflight: list[int] = []
        errors: list[str] = []
        started = threading.Event()
        worker = threading.Thread(target=_decrypt, args=(svc.socket, key, todo, sealed, accepted, inflight, errors,
                                                         started))
        worker.start()
        assert started.wait(30)
        time.sleep(rnd.uniform(0, 0.1))
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait()
        svc.stop()
        worker.join(30)
        assert not errors, errors
        undecided.update(inflight)
        svc.start()
        with Client(svc.socket) as c:
            for i in accepted:
                try:
                    c.decrypt(key, sealed[i])
                    raise AssertionError(f"message {i} was decrypted before the kill and again after it")
                except ServiceStatusError as e:
                    assert e.status == Status.NONCE_REUSE
            for i in list(undecided):  # either outcome, but from now on it has been accepted
                try:
                    c.decrypt(key, sealed[i])
                except ServiceStatusError as e:
                    assert e.status == Status.NONCE_REUSE
                undecided.discard(i)
                accepted.add(i)
    assert 0 < len(accepted) < POOL, "the kills missed the decrypt stream: adjust the timing"
    with Client(svc.socket) as c:
        for i in order:
            if i not in accepted:
                assert c.decrypt(key, sealed[i]) == b"%d" % i, f"fresh message {i} refused"
    svc.stop()
