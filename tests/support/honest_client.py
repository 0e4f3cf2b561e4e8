"""A well-behaved client that keeps checking every answer it gets, to run beside hostile ones.

It uses the real client library (wvds.client over libl4re_crypto_service.so) from its own thread
and its own connection: AES-256-GCM round trips (each ciphertext also decrypted, the plaintext
compared), ML-DSA-44 signatures checked with pyca/cryptography (independent of the service), and
random bytes of the asked length. At the end the service's own invocation counter of its AES key
must equal the encryptions it made: nothing lost, nothing counted twice. Any wrong result, error
status or transport failure is recorded; `check()` raises with all of them.
"""
from __future__ import annotations

import threading
import time

from cryptography.hazmat.primitives.asymmetric import mldsa

from wvds.client import Client
from wvds.protocol.constants import Algorithm


class HonestClient(threading.Thread):
    def __init__(self, socket_path: str, name: str = "honest", pause_s: float = 0.0, sign_every: int = 8):
        super().__init__(name=name, daemon=True)
        self.socket_path, self.pause_s, self.sign_every = socket_path, pause_s, sign_every
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.errors: list[str] = []
        self.ops = 0
        self.encryptions = 0
        self.latencies: list[float] = []

    def run(self) -> None:
        try:
            with Client(self.socket_path, timeout_ms=15_000) as c:
                aes = c.generate_key(Algorithm.AES_256_GCM, label=self.name).key_id
                dsa = c.generate_key(Algorithm.ML_DSA_44, label=self.name)
                public = mldsa.MLDSA44PublicKey.from_public_bytes(dsa.public_key)
                self.ready.set()
                i = 0
                while not self.stop_event.is_set():
                    t0 = time.perf_counter()
                    msg, aad = b"%s-%d-" % (self.name.encode(), i) * (1 + i % 17), b"aad-%d" % i
                    sealed = c.encrypt(aes, msg, aad)
                    self.encryptions += 1
                    if len(sealed) != len(msg) + 28 or c.decrypt(aes, sealed, aad) != msg:
                        self.errors.append(f"AES round trip {i} wrong")
                    if i % self.sign_every == 0:
                        public.verify(c.mldsa_sign(dsa.key_id, msg), msg)  # raises InvalidSignature if wrong
                        if len(c.random(i % 300)) != i % 300:
                            self.errors.append(f"RANDOM {i}: wrong length")
                    self.latencies.append(time.perf_counter() - t0)
                    self.ops += 1
                    i += 1
                    if self.pause_s:
                        time.sleep(self.pause_s)
                uses = c.describe_key(aes).uses
                if uses != self.encryptions:
                    self.errors.append(f"service counted {uses} encryptions, client made {self.encryptions}")
        except Exception as e:  # noqa: BLE001  reported by check()
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            self.ready.set()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(60)

    def check(self, min_ops: int = 10) -> None:
        assert not self.is_alive(), f"{self.name} still running"
        assert not self.errors, f"{self.name}: {self.errors[:10]}"
        assert self.ops >= min_ops, f"{self.name} completed only {self.ops} operations"


def service_fd_count(pid: int) -> int:
    import os
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
