"""One connected client: its channel, identity, rate limiter and serving threads.

Each serving thread takes the next submitted slot (the C side copies the request
out of shared memory once), dispatches it and completes the slot. Several
threads per client let its slots run concurrently; crypto calls release the GIL.
"""
from __future__ import annotations

import ctypes
import logging
import socket
import threading

from wvds.crypto_service import dispatch
from wvds.crypto_service.context import RequestContext
from wvds.crypto_service.keys import Peer
from wvds.crypto_service.ratelimit import TokenBucket
from wvds.protocol.constants import Status
from wvds.protocol.header import pack_response
from wvds.transport.linux_shm import REQ_AREA, Channel, TransportError

log = logging.getLogger("wvds.session")
POLL_MS = 500  # how often an idle thread checks whether the service is stopping


class Session:
    def __init__(self, service, channel: Channel):
        cfg = service.config
        self.service, self.channel = service, channel
        c = channel.creds
        self.ctx = RequestContext(Peer(c.pid, c.uid, c.gid), channel.client_id, service.keys, cfg, service.status)
        rl = cfg.rate_limit
        self.bucket = TokenBucket(rl.requests_per_second, rl.burst, rl.cooldown_ms / 1000.0)
        self._live = cfg.threads_per_client
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._serve, name=f"client-{channel.client_id}-{i}", daemon=True)
                        for i in range(cfg.threads_per_client)]

    def start(self) -> None:
        log.info("client connected", extra={"client": self.channel.client_id, "pid": self.ctx.peer.pid,
                                            "uid": self.ctx.peer.uid, "gid": self.ctx.peer.gid,
                                            "slots": self.channel.slots})
        for t in self.threads:
            t.start()

    def _serve(self) -> None:
        buf = ctypes.create_string_buffer(REQ_AREA)
        spin = self.service.config.spin_us
        try:
            while True:
                slot, frame = self.channel.next_request(buf, spin, POLL_MS)
                if slot == -1:
                    if self.service.stopping.is_set():
                        break
                    continue
                if slot < 0:
                    break  # peer gone (or the service shut the socket down)
                try:
                    if self.service.stopping.is_set():
                        response = pack_response(Status.SHUTTING_DOWN)
                    else:
                        response = dispatch.handle(self.ctx, self.bucket, frame)
                    self.channel.complete(slot, response)
                finally:
                    ctypes.memset(buf, 0, len(frame))  # requests may carry plaintext or key material
                    del frame
        except TransportError:
            log.exception("transport error", extra={"client": self.channel.client_id})
        finally:
            with self._lock:
                self._live -= 1
                last = self._live == 0
            if last:
                self.channel.close()
                self.service.session_ended(self)
                log.info("client disconnected", extra={"client": self.channel.client_id})

    def shutdown(self) -> None:
        """Wake the serving threads (they see the socket hang up) so they finish."""
        try:
            self.channel.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def join(self, timeout: float) -> None:
        for t in self.threads:
            t.join(timeout)
