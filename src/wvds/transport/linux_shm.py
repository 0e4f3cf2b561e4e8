"""Service side of the Linux shared-memory transport (see docs/transport.md).

Listener accepts connections, checks the peer's credentials before anything is
shared, and hands each accepted client a Channel: its private sealed memfd and
request doorbell. The slot protocol itself (atomics, futex, the one copy out of
shared memory) is C code shared with the client library (wvds_srv_* functions).
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import socket
import stat
import struct
from typing import Callable

from wvds.native import bind, spec
from wvds.peer import Peer
from wvds.protocol.constants import Status

_T = {c.name: c.value for c in spec.TRANSPORT}
TRANSPORT_MAGIC, TRANSPORT_VERSION = _T["TRANSPORT_MAGIC"], _T["TRANSPORT_VERSION"]
HELLO = struct.Struct(spec.HELLO[0])  # fields: spec.HELLO[1]
WELCOME = struct.Struct(spec.WELCOME[0])  # fields: spec.WELCOME[1]
REQ_AREA = spec.SLOT_REQ_AREA
SLOTS_OFFSET = _T["SHM_SLOTS_OFFSET"]
HELLO_TIMEOUT = 2.0


class TransportError(Exception):
    pass


SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux >= 4.13; Python 3.11 does not name it


def peer_groups(sock: socket.socket) -> tuple[int, ...]:
    """The peer's supplementary groups, from the kernel (a user added to the service group with
    usermod -aG has it only there, not as the SO_PEERCRED gid)."""
    size = 4 * 64
    while True:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, size)
            return tuple(struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))
        except OSError as e:
            if e.errno == errno.ENOPROTOOPT:  # a kernel before 4.13: the primary gid is all there is
                return ()
            if e.errno != errno.ERANGE or size >= 4 * 65536:
                raise
            size *= 16


def lib() -> ctypes.CDLL:
    """The service library with the prototypes of wvds.native.spec."""
    return bind.load("service")


class Channel:
    """One accepted client: its socket, sealed memfd mapping and request doorbell."""

    def __init__(self, sock: socket.socket, creds: Peer, client_id: int, slots: int):
        self.sock, self.creds, self.client_id, self.slots = sock, creds, client_id, slots
        L = lib()
        size = L.wvds_srv_shm_size(slots)
        self.memfd = os.memfd_create(f"wvds-client-{client_id}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(self.memfd, size)
            self.map = mmap.mmap(self.memfd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self._anchor = ctypes.c_char.from_buffer(self.map)  # keeps the mapping alive while C uses it
            self.base = ctypes.addressof(self._anchor)
            if L.wvds_srv_init_control(self.base, slots, client_id) != 0:
                raise TransportError("cannot initialise shared memory")
            fcntl.fcntl(self.memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            self.doorbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except BaseException:
            self.close()
            raise
        self.size = size

    def welcome(self) -> None:
        slot_size = (self.size - SLOTS_OFFSET) // self.slots
        msg = WELCOME.pack(TRANSPORT_MAGIC, TRANSPORT_VERSION, 0, self.slots, 0, self.size, slot_size,
                           self.client_id, 0)
        socket.send_fds(self.sock, [msg], [self.memfd, self.doorbell])
        # The client has its own descriptors now; the service keeps only the mapping and the doorbell.
        os.close(self.memfd)
        self.memfd = -1

    def next_request(self, buf: ctypes.Array, spin_us: int, timeout_ms: int,
                     fast: int | None = None) -> tuple[int, bytes | None]:
        """(slot, frame) for the next request; (-1, None) on timeout; (-2, None) when the peer is gone.
        With `fast` (a wvds_srv_fast pointer) the requests the C fast path can answer are answered
        meanwhile, in C, and never returned."""
        n = ctypes.c_uint32(0)
        slot = lib().wvds_srv_serve(self.base, self.slots, self.doorbell, self.sock.fileno(), spin_us, timeout_ms,
                                    fast, buf, len(buf), ctypes.byref(n))
        if slot < 0:
            return (-2 if slot == -2 else -1 if slot == -1 else -3), None
        return slot, ctypes.string_at(buf, n.value)

    def pending(self) -> int:
        """Requests submitted and not yet taken: a snapshot, for scheduling decisions only."""
        return lib().wvds_srv_pending(self.base, self.slots)

    def complete(self, slot: int, frame: bytes) -> None:
        if lib().wvds_srv_complete(self.base, self.slots, slot, frame, len(frame)) != 0:
            raise TransportError(f"cannot complete slot {slot}")

    def close(self) -> None:
        for fd_attr in ("doorbell", "memfd"):
            fd = getattr(self, fd_attr, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, fd_attr, -1)
        if getattr(self, "_anchor", None) is not None:
            self._anchor = None
            self.map.close()
        try:
            self.sock.close()
        except OSError:
            pass


def refuse(sock: socket.socket, status: Status) -> None:
    try:
        sock.send(WELCOME.pack(TRANSPORT_MAGIC, TRANSPORT_VERSION, int(status), 0, 0, 0, 0, 0, 0))
    except OSError:
        pass
    sock.close()


class Listener:
    """The service's Unix socket: accept_connection() reads the peer's credentials (nothing shared yet);
    the service applies its access list, then handshake() shares the memory (service.py)."""

    def __init__(self, path: str, mode: int):
        self.path = path
        _remove_stale_socket(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            self.sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, mode)
        self.sock.listen(64)

    def accept_connection(self) -> tuple[socket.socket, Peer]:
        """Block for one connection; return it with the peer's kernel-reported credentials (nothing shared yet)."""
        sock, _ = self.sock.accept()
        try:
            pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            groups = peer_groups(sock)
        except OSError:
            sock.close()
            raise
        return sock, Peer(pid, uid, gid, groups)

    def handshake(self, sock: socket.socket, creds: Peer, slots_for: Callable[[int], int],
                  next_client_id: Callable[[], int]) -> Channel:
        """HELLO -> WELCOME with the descriptors, for an admitted peer. Waits up to HELLO_TIMEOUT for the
        HELLO, so the service runs it off the accepting thread: a silent peer must not hold up others."""
        try:
            sock.settimeout(HELLO_TIMEOUT)
            hello = sock.recv(HELLO.size + 1)
            sock.settimeout(None)
            if len(hello) != HELLO.size:
                raise TransportError(f"HELLO of {len(hello)} bytes")
            magic, version, requested, _ = HELLO.unpack(hello)
            if magic != TRANSPORT_MAGIC or version != TRANSPORT_VERSION:
                raise TransportError(f"bad HELLO magic 0x{magic:08x} version {version}")
            channel = Channel(sock, creds, next_client_id(), slots_for(requested))
        except (OSError, TransportError):
            refuse(sock, Status.INVALID_HEADER)
            raise
        try:
            channel.welcome()
        except OSError:
            channel.close()
            raise
        return channel

    def close(self) -> None:
        self.sock.close()
        _remove_stale_socket(self.path)


def _remove_stale_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
        else:
            raise TransportError(f"{path} exists and is not a socket; refusing to replace it")
    except FileNotFoundError:
        pass
