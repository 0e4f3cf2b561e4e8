"""Request frames over a byte stream: a character device (the L4Re gateway's virtio console port) or a tty.

The frames are those of docs/protocol.md, back to back; only the header's length field delimits them.
`next_frame` reads a header, checks what the framing depends on (magic, version, a length within
MAX_PAYLOAD: everything else is the dispatcher's to check, and answer) and then exactly that many
payload bytes. When the header cannot be a request's, or its payload stops coming for FRAME_S, the
framing is lost: `FramingError` says what to answer, and `resync` drops what arrives until the
port has been quiet for QUIET_S. The caller answers after that, so the frame a peer sends once it
has its answer starts clean.
"""
from __future__ import annotations

import errno
import os
import select
import termios
import time
import tty
from typing import Callable

from wvds.protocol.constants import HEADER_SIZE, MAX_PAYLOAD, PROTOCOL_VERSION, REQUEST_MAGIC, Status

FRAME_S = 5.0  # the rest of a frame must arrive within this after its header
QUIET_S = 0.2  # resynchronised once the port has been silent this long
WRITE_S = 10.0  # a peer that takes no response for this long is treated as gone
POLL_MS = 500  # how often a waiting reader asks whether it should stop


class PortClosed(Exception):
    """The other end is gone (end of file, hang-up, or the device vanished)."""


class FramingError(Exception):
    """The stream does not hold a request frame here; answer `status`, then resync."""

    def __init__(self, status: Status, message: str):
        super().__init__(message)
        self.status = status


class StreamPort:
    def __init__(self, fd: int):
        """Owns fd (non-blocking), closes it in close()."""
        self.fd = fd

    @classmethod
    def open(cls, path: str) -> "StreamPort":
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            if os.isatty(fd):  # a tty's line discipline would translate and echo bytes
                tty.setraw(fd, termios.TCSANOW)
        except termios.error as e:  # (not an OSError): the caller retries the port as for any OSError
            os.close(fd)
            raise OSError(e.args[0], f"cannot make the tty raw: {e.args[-1]}") from None
        except BaseException:
            os.close(fd)
            raise
        return cls(fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- reading -----------------------------------------------------------
    def _wait(self, events: int, timeout_s: float) -> bool:
        """True when the port is ready for `events`; False on timeout. Hang-up and errors: PortClosed."""
        p = select.poll()
        p.register(self.fd, events)
        for _fd, ev in p.poll(max(0, int(timeout_s * 1000))):
            if ev & events:
                return True
            if ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                raise PortClosed("hang-up")
        return False

    def _read(self, n: int) -> bytes:
        try:
            data = os.read(self.fd, n)
        except BlockingIOError:
            return b""
        except OSError as e:  # a pty whose other end closed answers EIO; a removed device ENODEV
            if e.errno in (errno.EIO, errno.ENODEV, errno.ENXIO):
                raise PortClosed(os.strerror(e.errno)) from None
            raise
        if not data:
            raise PortClosed("end of file")
        return data

    def _read_exact(self, into: bytearray, start: int, deadline: float) -> None:
        view = memoryview(into)
        pos = start
        while pos < len(into):
            left = deadline - time.monotonic()
            if left <= 0 or not self._wait(select.POLLIN, left):
                # docs/protocol.md: shorter than a header is INVALID_HEADER, a payload cut short INVALID_PAYLOAD
                raise FramingError(Status.INVALID_HEADER if pos < HEADER_SIZE else Status.INVALID_PAYLOAD,
                                   f"frame incomplete: {pos} of {len(into)} bytes within {FRAME_S:g} s")
            chunk = self._read(len(into) - pos)
            view[pos:pos + len(chunk)] = chunk
            pos += len(chunk)

    def next_frame(self, stopping: Callable[[], bool]) -> bytearray | None:
        """The next whole request frame (header included), or None once `stopping()` says so."""
        while not self._wait(select.POLLIN, POLL_MS / 1000):
            if stopping():
                return None
        header = bytearray(HEADER_SIZE)
        self._read_exact(header, 0, time.monotonic() + FRAME_S)
        magic, version, length = header[0], header[1], int.from_bytes(header[4:8], "little")
        if magic != REQUEST_MAGIC or version != PROTOCOL_VERSION:
            raise FramingError(Status.INVALID_HEADER, f"not a request header (magic 0x{magic:02x}, "
                                                      f"version {version}): framing lost")
        if length > MAX_PAYLOAD:
            raise FramingError(Status.PAYLOAD_TOO_LARGE, f"payload length {length} exceeds {MAX_PAYLOAD}")
        frame = header + bytearray(length)
        self._read_exact(frame, HEADER_SIZE, time.monotonic() + FRAME_S)
        return frame

    def resync(self, stopping: Callable[[], bool], limit_s: float = 10.0) -> int:
        """Drop bytes until the port has been quiet for QUIET_S (at most limit_s, or until `stopping()`); how
        many were dropped."""
        dropped, deadline = 0, time.monotonic() + limit_s
        while time.monotonic() < deadline and not stopping() and self._wait(select.POLLIN, QUIET_S):
            dropped += len(self._read(65536))
        return dropped

    # -- writing -----------------------------------------------------------
    def write_all(self, data: bytes, stopping: Callable[[], bool]) -> None:
        """All of data, or PortClosed: the peer gone, taking nothing for WRITE_S, or the service stopping while
        it waits (checked every POLL_MS: a peer that reads nothing cannot hold the shutdown up)."""
        view = memoryview(data)  # (not in a tuple assignment: Nuitka 2.x fails to compile memoryview() there)
        deadline = time.monotonic() + WRITE_S
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PortClosed(f"the peer took no response for {WRITE_S:g} s")
            if not self._wait(select.POLLOUT, min(left, POLL_MS / 1000)):
                if stopping():
                    raise PortClosed("the service is stopping")
                continue
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                continue
            except OSError as e:
                if e.errno in (errno.EIO, errno.ENODEV, errno.ENXIO, errno.EPIPE):
                    raise PortClosed(os.strerror(e.errno)) from None
                raise
