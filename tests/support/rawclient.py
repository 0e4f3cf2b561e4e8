"""A deliberately independent, pure-Python client of docs/transport.md, for tests.

It can send frames the C library would never produce (bad magic, lying lengths,
oversize), rewrite shared memory while the service works, or vanish mid-request.
Waiting is by polling the slot state (good enough for tests; the C library uses futex).
"""
from __future__ import annotations

import mmap
import os
import socket
import struct
import time

MAGIC = 0x53445657
HELLO = struct.Struct("<IHHQ")
WELCOME = struct.Struct("<IHHHHIIIQ")
SLOTS_OFFSET = 4096
REQ_OFF, RESP_OFF = 64, 64 + 8 + 65536
FREE, SUBMITTED, BUSY, DONE = 0, 1, 2, 3


class Refused(Exception):
    def __init__(self, status: int):
        super().__init__(f"refused with status 0x{status:02x}")
        self.status = status


class RawClient:
    def __init__(self, path: str, slots: int = 0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(path)
        try:
            self.sock.send(HELLO.pack(MAGIC, 1, slots, 0))
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before HELLO was read: the WELCOME with the status is still queued
        try:
            msg, fds, _, _ = socket.recv_fds(self.sock, WELCOME.size, 2)
        except ConnectionResetError:  # same race: the first receive reports the reset, the second the reply
            msg, fds, _, _ = socket.recv_fds(self.sock, WELCOME.size, 2)
        if len(msg) != WELCOME.size:
            raise ConnectionError(f"WELCOME of {len(msg)} bytes")
        magic, version, status, self.slots, _, self.size, self.slot_size, self.client_id, _ = WELCOME.unpack(msg)
        if status != 0:
            raise Refused(status)
        self.memfd, self.doorbell = fds
        self.map = mmap.mmap(self.memfd, self.size)

    def slot_base(self, slot: int) -> int:
        return SLOTS_OFFSET + slot * self.slot_size

    def state(self, slot: int) -> int:
        return struct.unpack_from("<I", self.map, self.slot_base(slot))[0]

    def submit(self, frame: bytes, slot: int = 0, req_len: int | None = None) -> None:
        base = self.slot_base(slot)
        self.map[base + REQ_OFF: base + REQ_OFF + len(frame)] = frame
        struct.pack_into("<I", self.map, base + 4, len(frame) if req_len is None else req_len)
        struct.pack_into("<I", self.map, base, SUBMITTED)
        os.eventfd_write(self.doorbell, 1)

    def wait(self, slot: int = 0, timeout: float = 10.0) -> bytes:
        base = self.slot_base(slot)
        deadline = time.monotonic() + timeout
        while self.state(slot) != DONE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"slot {slot} not answered (state {self.state(slot)})")
            time.sleep(0.0002)
        n = struct.unpack_from("<I", self.map, base + 8)[0]
        resp = bytes(self.map[base + RESP_OFF: base + RESP_OFF + n])
        struct.pack_into("<I", self.map, base, FREE)
        return resp

    def roundtrip(self, frame: bytes, slot: int = 0, **kw) -> bytes:
        self.submit(frame, slot, **kw)
        return self.wait(slot)

    def write_request_area(self, slot: int, offset: int, data: bytes) -> None:
        base = self.slot_base(slot) + REQ_OFF + offset
        self.map[base: base + len(data)] = data

    def close(self) -> None:
        self.map.close()
        os.close(self.memfd)
        os.close(self.doorbell)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
