"""One connected client: its channel, identity, rate limiter and serving thread.

The serving thread takes the next submitted slot (the C side copies the request
out of shared memory once) and answers it. RANDOM, and the AES, signature, verify
and ML-KEM requests that will succeed on keys this client has already used
successfully, are answered in C before they get here (fastpath.py; the expensive
ones only while nothing else of the client waits); the rest arrive as frames.
Cheap requests (the other AES ones, key lookups) are answered inline, which keeps
small-request latency low. Expensive ones (key generation, signatures, ML-KEM)
are answered inline too while the client has nothing else in flight - a hand-off
to another thread costs about a tenth of an ML-DSA signature here - and go to the
service's worker pool as soon as its requests overlap (another slot submitted, one already in the pool, or one
that arrived while the last was served inline), so a client with several slots
in flight uses every core (OpenSSL calls release the GIL). Many clients use
every core anyway: each has its own serving thread. The channel is closed only
when the thread has stopped and no worker still holds one of its slots.

What a client cannot make the service do (docs/transport.md, "One request"):
* take a slot twice: the service holds every slot it takes (in C, wvds_srv_fast_release)
  until just before it publishes that slot's answer, whatever the client writes into the
  slot's state word;
* queue more than its slot count in the worker pool, or fill the pool's queue: beyond
  either bound the serving thread answers the request itself, so the client waits;
* get work done without tokens: the rate-limit token is taken when the request is taken,
  before it is queued, from the bucket of the client's identity (CryptoService.bucket_for) -
  exactly one per request: one the C fast path took before it gave the request up counts.
"""
from __future__ import annotations

import ctypes
import logging
import socket
import threading

from wvds.crypto_service import dispatch
from wvds.crypto_service.context import RequestContext
from wvds.crypto_service.fastpath import FastSession, TokenBucket
from wvds.protocol.constants import RequestType, Status
from wvds.protocol.header import pack_response
from wvds.transport.linux_shm import REQ_AREA, Channel, TransportError

log = logging.getLogger("wvds.session")
POLL_MS = 500  # how often an idle thread checks whether the service is stopping

# Operations worth a hand-off to the worker pool (milliseconds of CPU, GIL released inside OpenSSL).
HEAVY = frozenset({
    RequestType.MLDSA_SIGN, RequestType.MLDSA_VERIFY, RequestType.SLHDSA_SIGN, RequestType.SLHDSA_VERIFY,
    RequestType.ECDSA_SIGN, RequestType.ECDSA_VERIFY,
    RequestType.MLKEM_KEYGEN, RequestType.MLKEM_ENCAPS, RequestType.MLKEM_DECAPS,
    RequestType.KEY_GENERATE, RequestType.KEY_IMPORT,
})
_HEAVY_CODES = frozenset(int(t) for t in HEAVY)


class Session:
    def __init__(self, service, channel: Channel):
        cfg = service.config
        self.service, self.channel = service, channel
        self.bucket: TokenBucket = service.bucket_for(channel.creds)
        self.fast = FastSession(self.bucket, cfg.gcm_invocation_limit)
        self.ctx = RequestContext(channel.creds, channel.client_id, service.keys, cfg, service.status, self.fast)
        self._users = 1  # the serving thread + one per request handed to the pool
        self._pooled = 0  # requests of this client in the worker pool (queued or running): at most its slots
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, name=f"client-{channel.client_id}", daemon=True)

    def start(self) -> None:
        log.info("client connected", extra={"client": self.channel.client_id, "pid": self.ctx.peer.pid,
                                            "uid": self.ctx.peer.uid, "gid": self.ctx.peer.gid,
                                            "slots": self.channel.slots})
        self.thread.start()

    def _answer(self, slot: int, frame: bytes, watch: bool = False) -> bool:
        """Answer one request (its rate-limit token is taken). With watch: True if another request of this
        client was waiting when the answer was ready (looked at before the answer is released: the client
        may resubmit right after)."""
        if self.service.stopping.is_set():
            response = pack_response(Status.SHUTTING_DOWN)
        else:
            response = dispatch.handle(self.ctx, None, frame)
        waiting = watch and self.channel.pending() > 0
        self._complete(slot, response)
        return waiting

    def _complete(self, slot: int, response: bytes) -> None:
        self.fast.release(slot)  # before the answer is visible: the client may reuse the slot at once
        try:
            self.channel.complete(slot, response)
        except TransportError as e:  # the client rewrote the slot's state meanwhile: its loss only
            log.warning("response not delivered", extra={"client": self.channel.client_id, "reason": str(e)})

    def _answer_in_pool(self, slot: int, frame: bytes) -> None:
        try:
            self._answer(slot, frame)
        finally:
            self._left_pool()
            self._release()

    def _to_pool(self, slot: int, frame: bytes) -> bool:
        """Hand a request to the worker pool if this client and the pool have room for it."""
        with self._lock:
            if self._pooled >= self.channel.slots or not self.service.pool_enter(self._pooled):
                return False
            self._users += 1
            self._pooled += 1
        try:
            self.service.pool.submit(self._answer_in_pool, slot, frame)
        except RuntimeError:  # pool shut down: the service is stopping
            self._left_pool()
            self._release()
            self._complete(slot, pack_response(Status.SHUTTING_DOWN))
        return True

    def _left_pool(self) -> None:
        with self._lock:
            self._pooled -= 1
        self.service.pool_leave()

    def _serve(self) -> None:
        buf = ctypes.create_string_buffer(REQ_AREA)
        spin = self.service.spin_us
        overlapping = False
        try:
            while True:
                slot, frame = self.channel.next_request(buf, spin, POLL_MS, self.fast.ptr)
                if slot == -1:
                    if self.service.stopping.is_set():
                        break
                    continue
                if slot < 0:
                    break  # peer gone (or the service shut the socket down)
                ctypes.memset(buf, 0, len(frame))  # requests may carry plaintext or key material
                charged = self.fast.charged(slot)  # the C fast path took its token, then left it to us
                if not self.service.stopping.is_set() and not charged and not self.bucket.allow():  # before any work
                    self._complete(slot, pack_response(Status.RATE_LIMITED))
                    continue
                # Byte 2 is the request type; only peeked here, dispatch validates everything.
                heavy = len(frame) > 2 and frame[2] in _HEAVY_CODES
                if heavy and (overlapping or self._users > 1 or self.channel.pending()) \
                        and not self.service.stopping.is_set() and self._to_pool(slot, frame):
                    overlapping = False
                else:
                    overlapping = self._answer(slot, frame, watch=heavy)  # it waited for us: hand off next time
        except TransportError:
            log.exception("transport error", extra={"client": self.channel.client_id})
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self.fast.close()  # the serving thread is out of C for good
            self.channel.close()
            self.service.session_ended(self)
            log.info("client disconnected", extra={"client": self.channel.client_id})

    def shutdown(self) -> None:
        """Wake the serving thread (it sees the socket hang up) so it finishes."""
        self.fast.stop()  # from now on requests reach Python, which answers SHUTTING_DOWN
        try:
            self.channel.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

