"""The 8-byte frame header of every request and response (original product layout)."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from wvds.protocol.constants import (HEADER_SIZE, MAX_PAYLOAD, PROTOCOL_VERSION, REQUEST_MAGIC, RESPONSE_MAGIC,
                                     RequestType, Status)

_HEADER = struct.Struct("<BBBBI")
__all__ = ["Header", "HeaderError", "parse_request_header", "pack_request", "pack_response", "parse_response"]


class HeaderError(Exception):
    """A request header the service must reject; .status is what it answers."""

    def __init__(self, status: Status, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Header:
    magic: int
    version: int
    code: int  # request type or status
    flags: int
    length: int


def parse_request_header(frame: bytes, available: int | None = None) -> Header:
    """Validate a request header. `available` is how many payload bytes really follow.

    Order of checks (documented in docs/protocol.md): size, magic, version, flags,
    length against MAX_PAYLOAD, length against the bytes present, then the type.
    """
    if len(frame) < HEADER_SIZE:
        raise HeaderError(Status.INVALID_HEADER, f"frame of {len(frame)} bytes is shorter than the header")
    h = Header(*_HEADER.unpack_from(frame))
    if h.magic != REQUEST_MAGIC:
        raise HeaderError(Status.INVALID_HEADER, f"bad magic 0x{h.magic:02x}")
    if h.version != PROTOCOL_VERSION:
        raise HeaderError(Status.INVALID_HEADER, f"unsupported protocol version {h.version}")
    if h.flags != 0:
        raise HeaderError(Status.INVALID_HEADER, f"reserved flags 0x{h.flags:02x} set")
    if h.length > MAX_PAYLOAD:
        raise HeaderError(Status.PAYLOAD_TOO_LARGE, f"payload length {h.length} exceeds {MAX_PAYLOAD}")
    present = len(frame) - HEADER_SIZE if available is None else available
    if h.length != present:
        raise HeaderError(Status.INVALID_PAYLOAD, f"payload length {h.length} but {present} bytes present")
    if h.code not in RequestType._value2member_map_:
        raise HeaderError(Status.INVALID_TYPE, f"unknown request type 0x{h.code:02x}")
    return h


def pack_request(rtype: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(REQUEST_MAGIC, PROTOCOL_VERSION, int(rtype), 0, len(payload)) + payload


def pack_response(status: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(RESPONSE_MAGIC, PROTOCOL_VERSION, int(status), 0, len(payload)) + payload


def parse_response(frame: bytes) -> tuple[Status, bytes]:
    if len(frame) < HEADER_SIZE:
        raise ValueError("response shorter than its header")
    h = Header(*_HEADER.unpack_from(frame))
    if h.magic != RESPONSE_MAGIC or h.version != PROTOCOL_VERSION:
        raise ValueError(f"bad response header magic=0x{h.magic:02x} version={h.version}")
    if h.length != len(frame) - HEADER_SIZE:
        raise ValueError(f"response length {h.length} but {len(frame) - HEADER_SIZE} bytes present")
    try:
        status = Status(h.code)
    except ValueError:
        raise ValueError(f"unknown status 0x{h.code:02x}") from None
    return status, bytes(frame[HEADER_SIZE:])
