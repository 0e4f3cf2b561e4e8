"""A client that rewrites its shared memory while the service works on its request (double fetch).

The service reads req_len once and copies the frame out of shared memory before it looks at any of
it (docs/transport.md); everything it validates and uses is that private copy. Here a hostile
client keeps flipping, from a second thread and as fast as it can, the very bytes the service
reads: the AAD length (16 <-> 32, so the ciphertext length tells which snapshot was used), the
header's payload length (true <-> 65537), req_len (true / 0 / 3 / 10^9) and the slot's state word.
Whatever copy the service got, its answer must be a well-formed response consistent with one
snapshot of the request, never a crash, an internal error or a response beyond its area; and a
well-behaved client running beside it gets every result right.
"""
from __future__ import annotations

import struct
import threading
import time

from support.honest_client import HonestClient
from support.rawclient import RawClient
from wvds.client import Client
from wvds.protocol.constants import Algorithm, RequestType, Status
from wvds.protocol.header import pack_request, parse_response
from wvds.protocol.payloads import AesEncryptRequest

DURATION_S = 3.0


def test_rewriting_the_request_while_it_is_served(start_service):
    svc = start_service()
    honest = HonestClient(svc.socket)
    honest.start()
    assert honest.ready.wait(30)
    with Client(svc.socket) as owner:  # same uid as the raw client: it may use this key
        key = owner.generate_key(Algorithm.AES_256_GCM).key_id
    body = bytes(range(256)) * 4
    frame_a = pack_request(RequestType.AES_ENCRYPT, AesEncryptRequest(key, b"A" * 16, body[:1000 - 16]).encode())
    frame_b = pack_request(RequestType.AES_ENCRYPT, AesEncryptRequest(key, b"B" * 32, body[:1000 - 32]).encode())
    assert len(frame_a) == len(frame_b)
    payload_len = len(frame_a) - 8
    allowed_ct = {payload_len - 6 - 16, payload_len - 6 - 32}
    statuses: dict[str, int] = {}
    problems: list[str] = []
    with RawClient(svc.socket, slots=2) as raw:
        stop = threading.Event()

        def flipper() -> None:
            base = raw.slot_base(0)
            i = 0
            while not stop.is_set():
                i += 1
                raw.write_request_area(0, 4, struct.pack("<H", 16 if i & 1 else 32))  # AAD length (payload+4)
                if i % 7 == 0:
                    raw.write_request_area(0, 0, (frame_a if i & 8 else frame_b)[:8])
                if i % 11 == 0:
                    raw.write_request_area(0, 4, struct.pack("<I", 65537))  # header length lies
                if i % 13 == 0:
                    struct.pack_into("<I", raw.map, base + 4, (0, 3, 10**9, len(frame_a))[i % 4])  # req_len lies
                if i % 29 == 0:
                    struct.pack_into("<I", raw.map, base, (1, 0, 0xFFFFFFFF)[i % 3])  # state word
                if i % 64 == 0:
                    time.sleep(0)

        t = threading.Thread(target=flipper, daemon=True)
        t.start()
        deadline = time.monotonic() + DURATION_S
        answered = 0
        while time.monotonic() < deadline:
            raw.submit(frame_a if answered & 1 else frame_b, slot=1)  # slot 1: read back normally
            resp = raw.wait(1)
            status, payload = parse_response(resp)
            statuses[status.name] = statuses.get(status.name, 0) + 1
            if status == Status.SUCCESS and len(payload) - 28 not in allowed_ct:
                problems.append(f"slot 1: ciphertext of {len(payload) - 28} bytes")
            # slot 0 is under attack: resubmit and take whatever comes back, if anything
            try:
                raw.submit(frame_a, slot=0)
                resp0 = raw.wait(0, timeout=0.2)
            except TimeoutError:
                continue  # the flipper set the state to something the service does not serve: fine
            if len(resp0) >= 8 and resp0[0] == 0xC8:
                st0, p0 = parse_response(resp0) if len(resp0) - 8 == struct.unpack_from("<I", resp0, 4)[0] \
                    else (None, b"")
                if st0 == Status.SUCCESS and len(p0) - 28 not in allowed_ct:
                    problems.append(f"slot 0: ciphertext of {len(p0) - 28} bytes: not any snapshot")
                if st0 == Status.INTERNAL_ERROR:
                    problems.append("slot 0: INTERNAL_ERROR")
            answered += 1
        stop.set()
        t.join()
    honest.stop()
    honest.check()
    assert not problems, problems[:10]
    assert statuses.get("SUCCESS", 0) > 10, statuses
    with Client(svc.socket) as c:  # still serving, and the key still works
        assert c.decrypt(key, c.encrypt(key, b"after")) == b"after"
