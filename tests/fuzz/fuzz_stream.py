"""Fuzz target: the framing of request frames on a byte-stream channel (transport/stream_port.py), which
is what the L4Re gateway's port delivers to crypto_service (docs/l4re.md).

The input is what the peer wrote, delivered through a socket pair and then end of file. The reader
must cut it into frames or give up on the framing with a status, never raise anything else, and:
* every frame it returns starts with a request's magic and version and holds exactly the payload its
  header announces (at most MAX_PAYLOAD);
* while no framing error has happened, the frames are the input's first bytes, in order, and what is
  left is less than a whole frame (a truncated tail);
* after a framing error the resync drops everything up to the end of the input.
Byte 0 of the input, when even, is replaced by a well-formed RANDOM frame in front, so mutations also
explore what follows a good frame.

    python tests/fuzz/fuzz_stream.py tests/fuzz/corpus/stream
"""
from __future__ import annotations

import socket
import struct

import fuzzlib

import atheris

with atheris.instrument_imports(include=["wvds.transport.stream_port"]):
    from wvds.protocol.constants import HEADER_SIZE, MAX_PAYLOAD, PROTOCOL_VERSION, REQUEST_MAGIC, RequestType
    from wvds.protocol.header import pack_request
    from wvds.transport.stream_port import FramingError, PortClosed, StreamPort

GOOD = pack_request(RequestType.RANDOM, struct.pack("<I", 16))


def frames_of(data: bytes) -> tuple[list[bytes], int, bool]:
    """(frames read, framing errors, whether the input was drained to its end)."""
    a, b = socket.socketpair()
    a.setblocking(False)
    port = StreamPort(a.detach())
    try:
        b.sendall(data)
        b.shutdown(socket.SHUT_WR)
        frames, errors = [], 0
        while True:
            try:
                frame = port.next_frame(lambda: True)
            except FramingError:
                errors += 1
                try:
                    port.resync(lambda: False)  # drops to the end of the data (PortClosed)
                except PortClosed:
                    return frames, errors, True
                continue
            except PortClosed:
                return frames, errors, True
            if frame is None:  # nothing more arrived within the poll: cannot happen before end of file
                return frames, errors, False
            frames.append(bytes(frame))
    finally:
        port.close()
        b.close()


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    stream = (GOOD if data[0] % 2 == 0 else b"") + data[1:]
    frames, errors, drained = frames_of(stream)
    assert drained, "the reader stopped before the end of its input"
    for f in frames:
        assert f[0] == REQUEST_MAGIC and f[1] == PROTOCOL_VERSION, f[:8]
        length = struct.unpack_from("<I", f, 4)[0]
        assert length <= MAX_PAYLOAD and len(f) == HEADER_SIZE + length
    assert errors <= 1, "after a framing error the resync drains to the end of the input"
    if errors == 0:
        consumed = b"".join(frames)
        assert stream.startswith(consumed)
        rest = stream[len(consumed):]
        if len(rest) >= HEADER_SIZE:
            assert len(rest) < HEADER_SIZE + struct.unpack_from("<I", rest, 4)[0], "a whole frame was left unread"
    if data[0] % 2 == 0:
        assert frames[:1] == [GOOD], "the good frame in front was not read as one"


if __name__ == "__main__":
    fuzzlib.run(TestOneInput)
