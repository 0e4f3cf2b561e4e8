"""Configured channels: crypto requests over a byte-stream port instead of the socket and shared memory.

What it is for (docs/l4re.md): the OEM gateway as a native L4Re task beside the VM this service runs
in. Its channel is a virtio console port (/dev/virtio-ports/<name>) carrying the frames of
docs/protocol.md back to back; transport/stream_port.py does the framing.

Nobody connects to a port, so no socket credential says who is on the other end: the configuration
does (`channels[].uid/gid`, which must pass the access list like any client). What makes that
statement true lies outside the VM and this process: the L4Re configuration gives the port's device
to the gateway task only (ned), and inside the VM the device node belongs to this service's user
only (the delivery's udev rule). From there on the channel's requests go through the same
dispatcher as every client's: rate limit (the identity's bucket), key ownership, grants, quotas.

One thread per channel answers its requests one at a time. When the other end goes away (end of
file, hang-up, or a peer that takes no answers), the thread closes the port and opens it again
every REOPEN_S until the service stops.
"""
from __future__ import annotations

import logging
import threading
import time

from wvds.crypto_service import dispatch
from wvds.crypto_service.config import ChannelSpec
from wvds.crypto_service.context import RequestContext
from wvds.peer import Peer
from wvds.protocol.header import pack_response
from wvds.protocol.constants import Status
from wvds.transport.stream_port import FramingError, PortClosed, StreamPort

log = logging.getLogger("wvds.channel")
REOPEN_S = 1.0
WARN_EVERY_S = 10.0  # framing errors are logged at most this often (STATUS counts every one)


class PortChannel:
    def __init__(self, service, spec: ChannelSpec, client_id: int):
        self.service, self.spec = service, spec
        self.peer = Peer(0, spec.uid, spec.gid)
        self.ctx = RequestContext(self.peer, client_id, service.keys, service.config, service.status)
        self.bucket = service.bucket_for(self.peer)
        self._counts = {"requests": 0, "framing_errors": 0, "opened": 0}
        self._state = "closed"
        self._warned = -WARN_EVERY_S  # when the last framing error was logged (time.monotonic())
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"channel-{spec.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def describe(self) -> dict:
        """For STATUS: the channel, its identity and what it has done."""
        with self._lock:
            return {"name": self.spec.name, "path": self.spec.path, "uid": self.spec.uid, "gid": self.spec.gid,
                    "client": self.ctx.client_id, "state": self._state, **self._counts}

    def _set(self, state: str | None = None, **add: int) -> None:
        with self._lock:
            if state is not None:
                self._state = state
            for k, v in add.items():
                self._counts[k] += v

    def _run(self) -> None:
        stopping = self.service.stopping
        # What went wrong last time, logged once: a port whose other end is not there (a virtio port
        # without its device side answers end of file at once) must not write two lines a second.
        reported = None
        while not stopping.is_set():
            try:
                port = StreamPort.open(self.spec.path)
            except OSError as e:
                if e.strerror != reported:
                    log.warning("channel not open", extra={"channel": self.spec.name, "path": self.spec.path,
                                                           "reason": e.strerror, "retry_s": REOPEN_S})
                    reported = e.strerror
                self._set("waiting")
                stopping.wait(REOPEN_S)
                continue
            self._set("open", opened=1)
            level = logging.DEBUG if reported else logging.INFO
            log.log(level, "channel open", extra={"channel": self.spec.name, "path": self.spec.path,
                                                  "client": self.ctx.client_id, "uid": self.peer.uid,
                                                  "gid": self.peer.gid})
            before = self._counts["requests"]  # only this thread changes it
            try:
                self._serve(port)
                reported = None
            except PortClosed as e:
                served = self._counts["requests"] > before
                if served or str(e) != reported:
                    log.info("channel closed by its peer", extra={"channel": self.spec.name, "reason": str(e),
                                                                  "retry_s": REOPEN_S})
                reported = None if served else str(e)
            except Exception:  # a bug: log it, and open the port afresh
                log.exception("channel error", extra={"channel": self.spec.name})
                reported = None
            finally:
                port.close()
                self._set("closed")
            stopping.wait(REOPEN_S)

    def _serve(self, port: StreamPort) -> None:
        stopping = self.service.stopping
        while True:
            try:
                frame = port.next_frame(stopping.is_set)
            except FramingError as e:
                self._set(framing_errors=1)
                dropped = port.resync(stopping.is_set)  # first: the peer's next frame, sent after our answer, is kept
                port.write_all(pack_response(e.status), stopping.is_set)
                now = time.monotonic()
                if now - self._warned >= WARN_EVERY_S:  # a noisy peer must not fill the log
                    self._warned = now
                    log.warning("channel frame refused", extra={"channel": self.spec.name, "status": e.status.name,
                                                                "reason": str(e), "dropped_bytes": dropped,
                                                                "framing_errors": self._counts["framing_errors"]})
                if stopping.is_set():
                    return
                continue
            if frame is None:
                return  # the service is stopping
            try:
                stop = stopping.is_set()  # then answer what arrived, and read no more
                response = pack_response(Status.SHUTTING_DOWN) if stop else dispatch.handle(self.ctx, self.bucket,
                                                                                            bytes(frame))
            finally:
                frame[:] = bytes(len(frame))  # requests may carry plaintext or key material
            self._set(requests=1)
            port.write_all(response, stopping.is_set)
            if stop:
                return
