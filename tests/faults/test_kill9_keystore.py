"""kill -9 of crypto_service at random moments while clients generate, delete and use keys.

File key store (the embedded default). A worker keeps generating AES / ML-DSA-44 / ECDSA keys,
deleting some, and encrypting with AES keys as fast as it can (every 4096 encryptions of a key
persist a new counter reservation, an fsynced write). At a random moment the service is killed
with SIGKILL; then it is restarted and everything is checked against what the clients were told
*before* the crash:
* every key whose creation was acknowledged is there and works (AES: old ciphertexts decrypt, once;
  ML-DSA/ECDSA: its signatures verify under the public key returned at creation); every key whose
  deletion was acknowledged is gone; a key whose request was in flight may be either, but intact;
* no key file is unreadable, no temporary file is left over;
* no GCM nonce is ever reused: each AES key's `uses` after the restart is at least every count the
  clients saw before the crash (the counter never goes back), and no nonce appears twice in all the
  ciphertexts of all rounds.
"""
from __future__ import annotations

import random
import signal
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, mldsa

from wvds.client import Client, ServiceStatusError, TransportFailure
from wvds.protocol.constants import Algorithm

ROUNDS = 4


class Ledger:
    """What clients were told before each crash."""

    def __init__(self):
        self.keys: dict[int, tuple[Algorithm, bytes]] = {}  # acknowledged creations (not deleted): alg, public key
        self.deleted: set[int] = set()  # acknowledged deletions
        self.maybe: set[int] = set()  # deletion in flight at the crash
        self.uses_seen: dict[int, int] = {}  # highest invocation count a client has seen per AES key
        self.sealed: dict[int, list[tuple[bytes, bytes]]] = {}  # AES key -> (plaintext, sealed)
        self.nonces: list[bytes] = []
        self.signers: list[int] = []


def _work(sock: str, ledger: Ledger, rnd: random.Random, stop: threading.Event, errors: list[str]) -> None:
    try:
        with Client(sock, timeout_ms=5000) as c:
            aes_keys = [k for k, (a, _) in ledger.keys.items() if a == Algorithm.AES_256_GCM]
            n = 0
            while not stop.is_set():
                n += 1
                action = rnd.random()
                if action < 0.04 or not aes_keys:
                    alg = rnd.choice([Algorithm.AES_256_GCM, Algorithm.ML_DSA_44, Algorithm.ECDSA_P256])
                    created = c.generate_key(alg)
                    ledger.keys[created.key_id] = (alg, created.public_key)
                    if alg == Algorithm.AES_256_GCM:
                        aes_keys.append(created.key_id)
                        ledger.uses_seen[created.key_id] = 0
                elif action < 0.06 and len(ledger.keys) > 4:
                    victim = rnd.choice([k for k in ledger.keys if k not in aes_keys[:2]])
                    ledger.maybe.add(victim)
                    c.delete_key(victim)
                    ledger.maybe.discard(victim)
                    ledger.keys.pop(victim)
                    ledger.deleted.add(victim)
                    if victim in aes_keys:
                        aes_keys.remove(victim)
                else:
                    key = aes_keys[0] if action < 0.9 else rnd.choice(aes_keys)  # mostly one key: reservations
                    pt = b"%d" % n
                    sealed = c.encrypt(key, pt)
                    ledger.uses_seen[key] = ledger.uses_seen.get(key, 0) + 1
                    ledger.nonces.append(sealed[:12])
                    if n % 97 == 0:
                        ledger.sealed.setdefault(key, []).append((pt, sealed))
                        ledger.uses_seen[key] = max(ledger.uses_seen[key], c.describe_key(key).uses)
    except TransportFailure:
        pass  # the service was killed under us: expected
    except ServiceStatusError as e:
        errors.append(f"status {e.status.name} for {e.request.name}")


def _check(c: Client, ledger: Ledger, svc) -> None:
    ks = c.status()["keystore"]
    assert ks["unreadable_keys"] == [], ks
    present = {k for k, _ in c.list_keys()}
    for key_id in ledger.maybe:  # deletion in flight at the crash: either outcome, decided now
        if key_id not in present:
            ledger.keys.pop(key_id, None)
            ledger.deleted.add(key_id)
    ledger.maybe.clear()
    assert set(ledger.keys) <= present, f"acknowledged keys lost: {set(ledger.keys) - present}"
    assert not (ledger.deleted & present), f"deleted keys are back: {ledger.deleted & present}"
    for extra in present - set(ledger.keys):  # created or deleted while the crash happened: must still be intact
        c.describe_key(extra)
    for key_id, (alg, public) in ledger.keys.items():
        if alg == Algorithm.AES_256_GCM:
            uses = c.describe_key(key_id).uses
            assert uses >= ledger.uses_seen.get(key_id, 0), \
                f"AES key 0x{key_id:08x}: uses {uses} after restart < {ledger.uses_seen[key_id]} seen before"
            checked = ledger.sealed.get(key_id, [])[-3:]
            for pt, sealed in checked:
                assert c.decrypt(key_id, sealed) == pt
            del ledger.sealed.get(key_id, [])[-3:]  # decrypted: the key's replay window refuses them from now on
        elif alg == Algorithm.ML_DSA_44:
            mldsa.MLDSA44PublicKey.from_public_bytes(public).verify(c.mldsa_sign(key_id, b"m"), b"m")
        else:
            pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
            pub.verify(c.ecdsa_sign(key_id, b"m"), b"m", ec.ECDSA(hashes.SHA256()))
    tmp = [p.name for p in (svc.workdir / "keystore" / "keys").iterdir() if p.name.endswith(".tmp")]
    assert tmp == [], f"temporary files left over: {tmp}"


@pytest.mark.slow
def test_kill9_during_key_writes_loses_nothing(file_service):
    # Keys accumulate at ~2 % of the requests (4 % created, 2 % deleted); encryptions are fast: no quota in the way.
    svc = file_service(limits={"max_keys_per_client": 1_000_000})
    rnd = random.Random(1234)
    ledger = Ledger()
    errors: list[str] = []
    for _ in range(ROUNDS):
        svc.start()
        with Client(svc.socket) as c:
            _check(c, ledger, svc)
        stop = threading.Event()
        worker = threading.Thread(target=_work, args=(svc.socket, ledger, rnd, stop, errors))
        worker.start()
        time.sleep(rnd.uniform(0.4, 1.6))
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait()
        svc.stop()
        worker.join(30)
        stop.set()
        assert not errors, errors
    svc.start()
    with Client(svc.socket) as c:
        _check(c, ledger, svc)
    svc.stop()
    assert len(ledger.nonces) == len(set(ledger.nonces)), "a GCM nonce was returned twice"
    assert max(ledger.uses_seen.values()) > 4096, "no counter reservation was crossed: test too short"
    assert ledger.deleted and len(ledger.keys) > 3
