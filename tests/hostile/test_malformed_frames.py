"""Thousands of malformed frames with lying lengths, from several slots at once, beside an honest client.

Frames are built from valid requests by a seeded generator: header fields replaced (magic, version,
flags, type, a payload length that is too short, too long or over the limit), req_len lying in
every direction (0, shorter than the header, shorter or longer than the frame, past the request
area), payload bytes flipped, truncated or extended, key ids and embedded lengths set to extremes.
Every frame must get a well-formed response whose status is the one its copy deserves (checked
against wvds.protocol's own header rules for the header part), an error response has no payload,
nothing is INTERNAL_ERROR, and the honest client sees no difference.
"""
from __future__ import annotations

import random
import struct

from support.honest_client import HonestClient
from support.rawclient import RawClient
from wvds.client import Client
from wvds.protocol.constants import MAX_PAYLOAD, Algorithm, RequestType, Status
from wvds.protocol.header import HeaderError, pack_request, parse_request_header, parse_response
from wvds.protocol import payloads as p

FRAMES = 3000
REQ_AREA = 8 + MAX_PAYLOAD


def _valid_frames(key: int) -> list[bytes]:
    return [
        pack_request(RequestType.AES_ENCRYPT, p.AesEncryptRequest(key, b"aad", b"x" * 64).encode()),
        pack_request(RequestType.AES_DECRYPT, p.AesDecryptRequest(key, b"", b"\0" * 40).encode()),
        pack_request(RequestType.RANDOM, p.RandomRequest(16).encode()),
        pack_request(RequestType.KEY_DESCRIBE, p.KeyIdRequest(key).encode()),
        pack_request(RequestType.KEY_LIST, p.KeyListRequest(0).encode()),
        pack_request(RequestType.MLDSA_VERIFY, p.MldsaVerifyRequest(p.KeyRef(key), b"m", b"s" * 10).encode()),
        pack_request(RequestType.STATUS),
    ]


def _mutate(rnd: random.Random, frame: bytes) -> tuple[bytes, int | None]:
    """(bytes written to the request area, req_len to announce or None for the true length)."""
    f = bytearray(frame)
    for _ in range(rnd.randint(1, 3)):
        what = rnd.randrange(9)
        if what == 0 and len(f) >= 4:
            f[rnd.randrange(4)] = rnd.randrange(256)  # magic/version/type/flags
        elif what == 1 and len(f) >= 9:
            struct.pack_into("<I", f, 4, rnd.choice([0, 1, len(f) - 9, len(f) - 7, MAX_PAYLOAD, MAX_PAYLOAD + 1,
                                                     0xFFFFFFFF, rnd.randrange(1 << 32)]))
        elif what == 2 and len(f) > 8:
            f[rnd.randrange(8, len(f))] ^= 1 << rnd.randrange(8)
        elif what == 3:
            del f[rnd.randrange(len(f) + 1):]
        elif what == 4:
            f += rnd.randbytes(rnd.randrange(64))
        elif what == 5 and len(f) >= 12:
            struct.pack_into("<I", f, 8, rnd.choice([0, 1, 0xFFFFFFFF, rnd.randrange(1 << 32)]))  # key id
        elif what == 6 and len(f) >= 14:
            struct.pack_into("<H", f, 12, rnd.choice([0, 0xFFFF, len(f)]))  # embedded u16 length
    req_len = None
    if rnd.random() < 0.3:
        req_len = rnd.choice([0, 3, 7, 8, max(0, len(f) - 1), len(f) + 1, REQ_AREA, REQ_AREA + 1, 10**9,
                              0xFFFFFFFF])
    return bytes(f[:REQ_AREA]), req_len


def _expected_header_status(copied: bytes) -> Status | None:
    """What wvds.protocol says about the header of the bytes the service copies; None = header is fine."""
    try:
        parse_request_header(copied)
        return None
    except HeaderError as e:
        return e.status


def test_malformed_frames_beside_an_honest_client(start_service):
    svc = start_service()
    honest = HonestClient(svc.socket)
    honest.start()
    assert honest.ready.wait(30)
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
    rnd = random.Random(20260601)
    valid = _valid_frames(key)
    seen: dict[str, int] = {}
    problems = []
    with RawClient(svc.socket, slots=4) as raw:
        mirror = [bytearray(REQ_AREA) for _ in range(raw.slots)]  # what each request area holds (zeroed at start)
        for n in range(FRAMES):
            slot = n % raw.slots
            data, req_len = _mutate(rnd, rnd.choice(valid))
            raw.write_request_area(slot, 0, data)
            mirror[slot][:len(data)] = data  # bytes past the frame are whatever earlier frames left there
            announced = len(data) if req_len is None else req_len
            copied = bytes(mirror[slot][:min(announced, REQ_AREA)])
            raw.submit(b"", slot=slot, req_len=announced)  # frame already in place; announce req_len
            resp = raw.wait(slot)
            status, payload = parse_response(resp)  # raises if the response frame itself is malformed
            seen[status.name] = seen.get(status.name, 0) + 1
            want = _expected_header_status(copied)
            if want is not None and status not in (want, Status.RATE_LIMITED):
                problems.append(f"#{n}: header says {want.name}, service said {status.name}")
            if status == Status.INTERNAL_ERROR or (status != Status.SUCCESS and payload):
                problems.append(f"#{n}: {status.name} with {len(payload)} payload bytes")
    honest.stop()
    honest.check()
    assert not problems, problems[:10]
    assert len(seen) >= 5, seen  # the generator reached many different checks
