"""The renewal daemon as a process against the EST server: renewal by lifetime, backoff, expiry fallback,
restarts, SIGTERM, kill -9.

When the daemon attempts what (renewal points, jitter, backoff growth and cap, poll times, restarts) is
checked to the second on a manual clock in test_schedule.py; here the intervals are short and real.
"""
from __future__ import annotations

import json
import random
import signal
import time

import pytest

from support.est import assert_valid_pair


def _wait(pred, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("alg", ["ML-DSA-65", "ECDSA-P256"])
def test_daemon_renews_short_lived_certificate(make_client, est_server, alg):
    est_server.control(lifetime_s=4)  # valid 5 s from 1 s ago: each renewal due 0.25 .. 0.75 s after the last
    c = make_client(alg, certificate={"renew_at": 0.3, "jitter": 0.1})
    c.start_daemon()
    _wait(lambda: (c.generation() or 0) >= 3, 20, "two renewals")
    assert_valid_pair(c)
    ops = [r["op"] for r in est_server.requests() if r.get("op") in ("simpleenroll", "simplereenroll")]
    assert ops[0] == "simpleenroll" and set(ops[1:]) == {"simplereenroll"}
    t0 = time.monotonic()
    assert c.stop_daemon() == 0
    assert time.monotonic() - t0 < 3
    st = c.status()
    assert st["state"] in ("valid", "renewal due") and st["failures"] == 0 and st["last_success"]
    assert est_server.requests("simplereenroll")


def test_backoff_grows_and_is_capped(make_client, est_server):
    """The process retries after failures, no slower than the cap (the exact delays: test_schedule.py)."""
    c = make_client(certificate={"retry": {"initial_s": 0.1, "max_s": 0.3}})
    est_server.control(status={"simpleenroll": 500})
    c.start_daemon()
    _wait(lambda: len(est_server.requests("simpleenroll")) >= 6, 20, "six failed attempts")
    c.stop_daemon()
    times = [r["ts"] for r in est_server.requests("simpleenroll")]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g < 0.3 + 1.5 for g in gaps), gaps  # capped at max_s (+ the attempt's own time)
    st = c.status()
    assert st["failures"] >= 6 and "HTTP 500" in st["last_error"] and st["state"] == "not enrolled"


def test_expired_certificate(make_client, est_server):
    """After expiry: a fresh /simpleenroll with the bootstrap credentials (and a new key) if configured,
    else /simplereenroll with the re-enrollment credentials."""
    est_server.control(lifetime_s=2, users={"est": "est-pass", "device": "device-pass"})
    fb = make_client(name="fallback")
    (fb.dir / "device.pw").write_text("device-pass")
    (fb.dir / "device.pw").chmod(0o600)
    fb.config["servers"]["test"]["auth"]["reenroll"] = {"username": "device",
                                                        "password_file": str(fb.dir / "device.pw")}
    fb.write_config()
    nofb = make_client(name="nofallback", certificate={"bootstrap_on_expiry": False})
    fb.once()
    nofb.once()
    first = fb.pair()
    expiry = max(c.pair()[0].not_valid_after_utc.timestamp() for c in (fb, nofb))
    time.sleep(max(0.0, expiry - time.time()) + 0.1)  # both expired now (2 s certificates)
    est_server.control(users={"est": "est-pass", "device": "device-pass"})
    fb.once()
    cert = assert_valid_pair(fb)
    r = est_server.requests("simpleenroll")
    assert len(r) == 1 and r[0]["basic_user"] == "est" and not est_server.requests("simplereenroll")
    assert fb.pair()[2]["key_id"] != first[2]["key_id"]  # a fresh key for the fresh enrollment
    assert cert.serial_number != first[0].serial_number
    est_server.control()
    nofb.once()
    assert est_server.requests("simplereenroll") and not est_server.requests("simpleenroll")
    assert_valid_pair(nofb)


def test_renewal_time_survives_restart(make_client, est_server):
    c = make_client(certificate={"jitter": 0.2})
    c.once()
    c.start_daemon()
    _wait(lambda: c.state().get("renew_after"), 10, "renewal time drawn")
    drawn = c.state()["renew_after"]
    c.stop_daemon()
    c.start_daemon()
    time.sleep(0.5)
    c.stop_daemon()
    assert c.state()["renew_after"] == drawn
    assert c.generation() == 1  # nothing was due


def _pair_ok(c) -> None:
    assert c.generation() is not None
    assert_valid_pair(c)


def test_kill9_during_renewal_keeps_a_working_pair(make_client, est_server):
    """kill -9 while the renewal request is in flight; the restart resends the identical CSR."""
    c = make_client(certificate={"rekey": True})
    c.once()
    before = c.pair()
    est_server.control(delay_s={"simplereenroll": 3})
    # make renewal due now: `once` drew renew_after; rewrite it into the past
    st = c.state()
    assert st["renew_after"]
    st["renew_after"] = 0
    (c.cert_dir / "state.json").write_text(json.dumps(st))
    c.start_daemon()
    _wait(lambda: c.state().get("pending") and c.state()["pending"].get("csr_b64"), 10, "CSR sent")
    time.sleep(0.5)
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait()
    c.proc = None
    c.daemon_log.close()
    assert c.pair()[0] == before[0]
    _pair_ok(c)
    pending = c.state()["pending"]
    est_server.control()
    time.sleep(0.1)
    c.once()
    _pair_ok(c)
    assert c.generation() == 2
    posts = [r for r in est_server.requests("simplereenroll") if r.get("status") == 200]
    import base64
    import hashlib
    assert posts[-1]["csr_sha256"] == hashlib.sha256(base64.b64decode(pending["csr_b64"])).hexdigest()
    assert c.state()["pending"] is None


def test_crash_between_key_and_csr_is_repaired(make_client, est_server):
    """Regression: a kill -9 after the new key was recorded but before its CSR was saved left a
    pending request without a CSR, which the restart used to send (HTTP 400)."""
    c = make_client(certificate={"rekey": True})
    c.once()
    st = c.state()
    st["pending"] = {"key_id": 0x7FFFFFF0, "key_algorithm": "ML-DSA-65", "new_key": True,
                     "operation": "simplereenroll", "credentials": "reenroll", "csr_b64": "",
                     "started": time.time(), "polls": 0, "next_poll": 0.0}
    (c.cert_dir / "state.json").write_text(json.dumps(st))
    before = c.generation()
    c.once("--force")
    assert c.state()["pending"] is None and c.generation() != before
    _pair_ok(c)


def test_kill9_at_random_points(make_client, est_server):
    """Rapid renewals (2 s certificates, rekey each time), killed at random moments: always a valid pair."""
    rnd = random.Random(7)
    est_server.control(lifetime_s=2)
    c = make_client(certificate={"renew_at": 0.1, "jitter": 0.0, "rekey": True})
    c.once()
    for _ in range(2):
        c.start_daemon()
        time.sleep(rnd.uniform(0.3, 1.5))
        c.stop_daemon(signal.SIGKILL)
        est_server.control(lifetime_s=30)  # long enough to check the pair at leisure
        c.once()  # the restart repairs and, if due, renews
        _pair_ok(c)
        st = c.state()
        assert st["pending"] is None
        est_server.control(lifetime_s=2)
        c.once("--force")
    _pair_ok(c)
    # no leftovers of interrupted commits
    names = sorted(p.name for p in c.cert_dir.iterdir())
    assert all(n.startswith("gen-") or n in ("current", "state.json") for n in names), names
    assert len([n for n in names if n.startswith("gen-")]) <= 2


def test_sigterm_during_slow_request(make_client, est_server):
    c = make_client()
    est_server.control(delay_s={"simpleenroll": 10})
    c.start_daemon()
    _wait(lambda: c.state().get("pending") and c.state()["pending"].get("csr_b64"), 10, "request sent")
    time.sleep(0.3)
    t0 = time.monotonic()
    assert c.stop_daemon() == 0
    assert time.monotonic() - t0 < 3, "SIGTERM did not abort the request in flight"
    assert c.generation() is None and c.state()["pending"]
