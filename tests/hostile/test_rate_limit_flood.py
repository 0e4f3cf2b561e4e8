"""Rate limits follow the client's identity (uid by default), not its connection.

* One uid floods far past the limit; an honest client of another uid, concurrently, never sees
  RATE_LIMITED and gets every result right. The flooder must be throttled: RATE_LIMITED answers,
  and no more than rate x time + burst successes.
* Reconnecting refills nothing, and many connections of one uid share one bucket (the version
  before gave every connection its own).
"""
from __future__ import annotations

import time

from support.other_uid import NOBODY, needs_root, result_of, start_as
from support.rawclient import RawClient
from wvds.protocol.constants import RequestType, Status
from wvds.protocol.header import pack_request, parse_response
from wvds.protocol.payloads import RandomRequest

RATE, BURST = 200, 20
DURATION_S = 3.0
FRAME = pack_request(RequestType.RANDOM, RandomRequest(32).encode())

HONEST = """
import time
c = Client(os.environ["SOCK"])
key = c.generate_key(Algorithm.AES_256_GCM).key_id
errors, ops = [], 0
end = time.monotonic() + float(os.environ.get("SECONDS_", "3"))
while time.monotonic() < end:
    try:
        msg = os.urandom(64)
        if c.decrypt(key, c.encrypt(key, msg)) != msg:
            errors.append("wrong plaintext")
        if len(c.random(32)) != 32:
            errors.append("wrong random length")
        ops += 3
    except ServiceStatusError as e:
        errors.append(e.status.name)
    time.sleep(0.02)
print(json.dumps({"ops": ops, "errors": errors[:20]}))
"""


def flood(socket: str, seconds: float) -> tuple[dict, float]:
    counts = {Status.SUCCESS: 0, Status.RATE_LIMITED: 0}
    with RawClient(socket) as raw:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            for slot in range(raw.slots):
                raw.submit(FRAME, slot)
            for slot in range(raw.slots):
                status, _ = parse_response(raw.wait(slot))
                counts[status] = counts.get(status, 0) + 1
        return counts, time.monotonic() - t0


@needs_root
def test_flood_past_the_rate_limit(start_service, shared_dir):
    sock = str(shared_dir / "crypto.sock")
    svc = start_service(socket={"path": sock, "mode": "0666"}, access={"allow_uids": [0, NOBODY]},
                        limits={"rate_limit": {"requests_per_second": RATE, "burst": BURST, "cooldown_ms": 100}})
    honest = start_as(NOBODY, shared_dir, svc.socket, "os.environ['SECONDS_'] = '4'\n" + HONEST)
    counts, elapsed = flood(svc.socket, DURATION_S)
    out = result_of(honest)
    assert out["errors"] == [] and out["ops"] >= 30, out
    assert counts[Status.RATE_LIMITED] > counts[Status.SUCCESS], counts
    assert counts[Status.SUCCESS] <= RATE * elapsed + BURST + RATE * 0.1, counts
    assert set(counts) == {Status.SUCCESS, Status.RATE_LIMITED}, counts


def test_reconnecting_or_more_connections_gain_nothing(start_service):
    rate, burst = 5, 5
    svc = start_service(limits={"rate_limit": {"requests_per_second": rate, "burst": burst, "cooldown_ms": 1000}})
    with RawClient(svc.socket, slots=1) as first:
        statuses = [parse_response(first.roundtrip(FRAME))[0] for _ in range(burst + 1)]
    assert statuses[-1] == Status.RATE_LIMITED, statuses
    with RawClient(svc.socket, slots=1) as again:  # a new connection of the same uid: the same empty bucket
        assert parse_response(again.roundtrip(FRAME))[0] == Status.RATE_LIMITED
    time.sleep(1.5)  # cooldown over; about 7 tokens back, at most the burst
    many = [RawClient(svc.socket, slots=1) for _ in range(8)]
    try:
        t0 = time.monotonic()
        ok = sum(parse_response(c.roundtrip(FRAME))[0] == Status.SUCCESS for c in many for _ in range(3))
        elapsed = time.monotonic() - t0
    finally:
        for c in many:
            c.close()
    assert ok <= burst + rate * elapsed + 1, f"{ok} successes over 8 connections of one uid"
