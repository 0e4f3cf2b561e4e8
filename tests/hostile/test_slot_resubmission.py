"""A client that flips its busy slots back to SUBMITTED, to have heavy requests queued again and again.

The slot state word lives in shared memory, so the client can write it. The service keeps its own
record of the slots it holds (in C, beside the fast path) and never takes a held slot again until
it has published that slot's answer; a session has at most its slot count in the worker pool, and
the pool's queue is bounded. Reproduced against the version before: 8 slots of ML-DSA-87
signatures over 60 000-byte messages, BUSY -> SUBMITTED for 8 s: 18 569 duplicates queued and the
service grew from 40 to 1062 MiB. Here: the same attack; the session's jobs in the pool never
exceed its slots, the service's memory stays where it was, and an honest client beside it gets
every answer right.
"""
from __future__ import annotations

import os
import struct
import time

from support.honest_client import HonestClient
from support.rawclient import BUSY, DONE, RawClient
from wvds.client import Client
from wvds.protocol.constants import Algorithm, RequestType, Status
from wvds.protocol.header import pack_request, parse_response
from wvds.protocol.payloads import MldsaSignRequest

DURATION_S = 6.0
SLOTS = 8


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_flipping_busy_slots_queues_nothing_twice(start_service):
    svc = start_service(limits={"slots_per_client": SLOTS, "rate_limit": {"requests_per_second": 0}})
    with Client(svc.socket) as owner:
        key = owner.generate_key(Algorithm.ML_DSA_87).key_id
    frame = pack_request(RequestType.MLDSA_SIGN, MldsaSignRequest(key, os.urandom(60_000)).encode())
    honest = HonestClient(svc.socket, sign_every=2)
    honest.start()
    assert honest.ready.wait(30)
    with RawClient(svc.socket, slots=SLOTS) as raw:
        assert raw.slots == SLOTS
        for slot in range(SLOTS):  # warm up: every slot answered once the honest way
            raw.submit(frame, slot)
        for slot in range(SLOTS):
            assert parse_response(raw.wait(slot, timeout=60))[0] == Status.SUCCESS
        time.sleep(0.5)
        start_rss = rss_mib(svc.proc.pid)
        flips = answered = 0
        for slot in range(SLOTS):
            raw.submit(frame, slot)
        deadline = time.monotonic() + DURATION_S
        peak_rss, next_sample = start_rss, 0.0
        while (now := time.monotonic()) < deadline:
            if now >= next_sample:
                peak_rss, next_sample = max(peak_rss, rss_mib(svc.proc.pid)), now + 0.1
            for slot in range(SLOTS):
                base = raw.slot_base(slot)
                state = raw.state(slot)
                if state == BUSY:
                    struct.pack_into("<I", raw.map, base, 1)  # SUBMITTED again
                    os.eventfd_write(raw.doorbell, 1)
                    flips += 1
                elif state == DONE:
                    answered += 1
                    raw.submit(frame, slot)
        end_rss = rss_mib(svc.proc.pid)
        # let the slots settle: whatever is still held gets its one answer
        for slot in range(SLOTS):
            try:
                raw.wait(slot, timeout=30)
            except TimeoutError:
                pass  # left SUBMITTED by the last flip after its answer: nobody owes it anything
    honest.stop()
    honest.check()
    with Client(svc.socket) as c:
        pool = c.status()["pool"]
    # Each flip of a held slot is ignored; the job's answer then finds the slot SUBMITTED (not delivered), and
    # the slot is taken once more as a new request. So flips track jobs run, one each: the version before
    # queued every flip (thousands per second).
    assert flips > 50, (flips, answered)
    assert pool["session_peak"] <= SLOTS, pool
    assert pool["peak"] <= pool["capacity"], pool
    grown = max(peak_rss, end_rss) - start_rss
    assert grown < 16, f"RSS {start_rss:.0f} -> peak {peak_rss:.0f} / end {end_rss:.0f} MiB after {flips} flips"
