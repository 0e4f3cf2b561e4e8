"""One client floods far past the rate limit; the limit is per client, so nobody else notices.

The flooder fills all its slots as fast as it can for a few seconds and must be throttled
(RATE_LIMITED answers, and no more than rate x time + burst successes). An honest client at a
modest rate, concurrently, must never see RATE_LIMITED and must get every result right.
"""
from __future__ import annotations

import time

from hostile.honest import HonestClient
from support.rawclient import RawClient
from wvds.protocol.constants import RequestType, Status
from wvds.protocol.header import pack_request, parse_response
from wvds.protocol.payloads import RandomRequest

RATE, BURST = 200, 20
DURATION_S = 3.0


def test_flood_past_the_rate_limit(start_service):
    svc = start_service(limits={"rate_limit": {"requests_per_second": RATE, "burst": BURST, "cooldown_ms": 100}})
    honest = HonestClient(svc.socket, pause_s=0.02, sign_every=1000)  # ~2 requests per 20 ms: well under RATE
    honest.start()
    assert honest.ready.wait(30)
    frame = pack_request(RequestType.RANDOM, RandomRequest(32).encode())
    counts = {Status.SUCCESS: 0, Status.RATE_LIMITED: 0}
    with RawClient(svc.socket) as flood:
        t0 = time.monotonic()
        while time.monotonic() - t0 < DURATION_S:
            for slot in range(flood.slots):
                flood.submit(frame, slot)
            for slot in range(flood.slots):
                status, _ = parse_response(flood.wait(slot))
                counts[status] = counts.get(status, 0) + 1
        elapsed = time.monotonic() - t0
    honest.stop()
    honest.check(min_ops=30)
    assert counts[Status.RATE_LIMITED] > counts[Status.SUCCESS], counts
    assert counts[Status.SUCCESS] <= RATE * elapsed + BURST + RATE * 0.1, counts
    assert set(counts) == {Status.SUCCESS, Status.RATE_LIMITED}, counts
