"""The renewal schedule in-process, on a manual clock: when the daemon attempts what, to the second.

The real Daemon and Managed (renewal.py), the real certificate store and state files; only the clock
and the attempt itself are stand-ins: the clock moves when the daemon waits, and a fake CA issues a
certificate valid from "now" (or fails as the test scripts). Hours of renewals and backoff run in
milliseconds. test_renewal.py runs the real est_service process against the EST server for what
needs it (the wire, signals, kill -9), with short real intervals.
"""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wvds.est_service import renewal
from wvds.est_service.config import CertificateSpec, Config, Retry
from wvds.est_service.enroll import Outcome
from wvds.est_service.errors import AuthError, HttpStatusError
from wvds.est_service.state import Pending
from wvds.est_service.x509 import Cert

T0 = 1_800_000_000.0  # 2027-01-15: any fixed start will do
HOUR = 3600.0


class ManualClock:
    """Time moves only when the daemon waits: each wait jumps to its end. At `until` the run is stopped."""

    def __init__(self, start: float = T0, until: float | None = None):
        self.t, self.until = start, until
        self.waits: list[float] = []

    def now(self) -> float:
        return self.t

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.t += seconds
        if self.until is not None and self.t >= self.until:
            event.set()
        return event.is_set()


class FakeCA:
    """Stands in for Enrollment: each attempt issues a certificate valid for lifetime_s from now, unless
    `script` says otherwise (an exception to raise, or a callable(state) that may set up a pending request
    and returns the exception). Records each attempt: its time and the state it started from."""

    def __init__(self, clock: ManualClock, lifetime_s: float = HOUR, script: list | None = None):
        self.clock, self.lifetime_s, self.script = clock, lifetime_s, list(script or [])
        self.attempts: list[dict] = []
        self.key = ec.generate_private_key(ec.SECP256R1())

    def __call__(self, cfg, spec, keys, store, state, state_path, cancel):
        return _Attempt(self, spec, store, state)

    def certificate(self) -> Cert:
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "gw")])
        nb = dt.datetime.fromtimestamp(self.clock.now(), dt.timezone.utc)
        c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(nb)
             .not_valid_after(nb + dt.timedelta(seconds=self.lifetime_s)).sign(self.key, hashes.SHA256()))
        return Cert(c.public_bytes(serialization.Encoding.DER))


class _Attempt:
    def __init__(self, ca: FakeCA, spec, store, state):
        self.ca, self.spec, self.store, self.state = ca, spec, store, state

    def run(self) -> Outcome:
        cur = self.store.current()
        self.ca.attempts.append({"t": self.ca.clock.now(), "renew_after": self.state.renew_after,
                                 "next_attempt": self.state.next_attempt, "failures": self.state.failures,
                                 "current": cur})
        if self.ca.script:
            step = self.ca.script.pop(0)
            if callable(step):
                step = step(self.state)
            if step is not None:
                raise step
        self.state.pending = None
        cred = self.store.commit(self.ca.certificate(), [], 100 + len(self.ca.attempts), "EC-P-256",
                                 self.spec.key_label)
        return Outcome(cred, "simplereenroll" if cur else "simpleenroll", False, 0)


class FakeKeys:
    """crypto_service as the daemon sees it between attempts: nothing to list, deletions succeed."""

    def __init__(self, *_args):
        self.deleted: list[int] = []

    def own_keys_labelled(self, _label: str) -> list[int]:
        return []

    def delete(self, key_id: int) -> bool:
        self.deleted.append(key_id)
        return True

    def close(self) -> None:
        pass


@pytest.fixture
def daemon(tmp_path, monkeypatch):
    """make(clock, ca, **certificate settings) -> a started Daemon on tmp_path with that clock and CA."""
    monkeypatch.setattr(renewal, "KeyService", FakeKeys)

    def make(clock: ManualClock, ca: FakeCA, **spec) -> renewal.Daemon:
        monkeypatch.setattr(renewal, "Enrollment", ca)
        cfg = Config(state_dir=str(tmp_path / "state"), status_file=str(tmp_path / "status.json"),
                     certificates=(CertificateSpec("device", "test", key_label="est:device", **spec),))
        d = renewal.Daemon(cfg, clock)
        d.start()
        return d

    return make


def _run(d: renewal.Daemon) -> None:
    d.run(threading.Event())  # returns when the manual clock reaches its `until`


def _status(tmp_path) -> dict:
    return json.loads((tmp_path / "status.json").read_text())


def test_renewal_at_the_drawn_point_of_each_lifetime(daemon, tmp_path):
    """Enroll at once, then renew each certificate at nb + (renew_at ± jitter/2) x lifetime, on time,
    long before expiry; the daemon wakes at least every MAX_SLEEP_S meanwhile."""
    clock = ManualClock(until=T0 + 4 * HOUR)
    ca = FakeCA(clock, lifetime_s=HOUR)
    d = daemon(clock, ca, renew_at=0.5, jitter=0.2)
    _run(d)
    first, renewals = ca.attempts[0], ca.attempts[1:]
    assert first["t"] == T0 and first["current"] is None
    assert len(renewals) >= 6  # every ~30 minutes for 4 hours
    draws = set()
    for a in renewals:
        cert = a["current"].cert
        nb, na = cert.not_before.timestamp(), cert.not_after.timestamp()
        assert nb + 0.4 * HOUR <= a["renew_after"] <= nb + 0.6 * HOUR  # within the jitter around half
        assert a["renew_after"] <= a["t"] < a["renew_after"] + 0.1  # on time, not at the next wake-up
        assert a["t"] < na
        draws.add(round(a["renew_after"] - nb))
    assert len(draws) > 1  # jitter drawn per certificate
    assert max(clock.waits) <= renewal.MAX_SLEEP_S
    st = _status(tmp_path)
    assert st["certificates"][0]["state"] == "valid" and st["certificates"][0]["failures"] == 0


def test_backoff_after_failures_grows_and_is_capped(daemon):
    """After the n-th failure: min(max_s, initial_s * 2^(n-1)) * U(0.5, 1); 401/403 at least 4 x initial_s
    (within max_s); the first success ends the backoff."""
    clock = ManualClock(until=T0 + 2 * HOUR)
    failures = [HttpStatusError(500, "simpleenroll")] * 7 + [AuthError(401, "simpleenroll"),
                                                             HttpStatusError(500, "simpleenroll")]
    ca = FakeCA(clock, lifetime_s=100 * HOUR, script=failures)
    d = daemon(clock, ca, retry=Retry(initial_s=10, max_s=80))
    _run(d)
    times = [a["t"] for a in ca.attempts]
    assert len(times) == len(failures) + 1  # then valid for the rest of the run
    for n, (a, b) in enumerate(zip(times, times[1:]), 1):
        cap = min(80, 10 * 2 ** (n - 1))
        gap = b - a
        if isinstance(failures[n - 1], AuthError):
            assert min(80, 40) <= gap <= cap, (n, gap)
        else:
            assert 0.5 * cap <= gap <= cap, (n, gap)
        assert ca.attempts[n]["failures"] == n
        assert ca.attempts[n]["next_attempt"] <= b < ca.attempts[n]["next_attempt"] + 0.1  # on time
    st = d.certs[0].state
    assert st.failures == 0 and st.last_error is None and st.next_attempt == 0.0
    assert st.last_success == times[-1]


def test_failures_are_reported_while_not_enrolled(daemon, tmp_path):
    clock = ManualClock(until=T0 + 200)
    ca = FakeCA(clock, script=[HttpStatusError(500, "simpleenroll")] * 100)
    d = daemon(clock, ca, retry=Retry(initial_s=10, max_s=20))
    _run(d)
    entry = _status(tmp_path)["certificates"][0]
    assert entry["state"] == "not enrolled" and entry["failures"] == len(ca.attempts) >= 10
    assert "HTTP 500" in entry["last_error"]
    assert all(b["t"] - a["t"] <= 20 for a, b in zip(ca.attempts, ca.attempts[1:]))  # capped


def test_renewal_point_survives_a_restart(daemon):
    """The jittered point is drawn once per certificate and stored: a restarted daemon keeps it and
    attempts nothing before it."""
    clock = ManualClock()
    ca = FakeCA(clock, lifetime_s=10 * HOUR)
    first = daemon(clock, ca, renew_at=0.5, jitter=0.5)
    first.once()
    drawn = first.certs[0].state.renew_after
    assert drawn is not None
    for _restart in range(3):
        again = daemon(clock, ca, renew_at=0.5, jitter=0.5)
        assert again.certs[0].state.renew_after == drawn
    clock.until = drawn - 1
    _run(again)
    assert len(ca.attempts) == 1  # nothing was due
    clock.until = drawn + 1
    _run(again)
    assert len(ca.attempts) == 2 and drawn <= ca.attempts[1]["t"] < drawn + 0.1


def test_a_pending_request_waits_for_its_poll_time(daemon):
    """A failure with the request kept (the server said 202, then 500): the next attempt is at the later
    of the poll time and the backoff."""
    clock = ManualClock(until=T0 + HOUR)

    def pending_then_500(state):
        state.pending = Pending(7, "EC-P-256", True, "simpleenroll", "bootstrap", "Q1NS", started=clock.now(),
                                polls=1, next_poll=clock.now() + 600)
        return HttpStatusError(500, "simpleenroll")

    ca = FakeCA(clock, lifetime_s=10 * HOUR, script=[pending_then_500])
    d = daemon(clock, ca, retry=Retry(initial_s=10, max_s=20))
    _run(d)
    assert [a["t"] for a in ca.attempts] == [T0, T0 + 600]
    assert d.certs[0].state.pending is None


def test_once_and_status_follow_the_clock(daemon, tmp_path):
    """`once` attempts only what is due by the clock; the status says valid, renewal due, expired."""
    clock = ManualClock()
    ca = FakeCA(clock, lifetime_s=10 * HOUR)
    d = daemon(clock, ca, renew_at=0.5, jitter=0.0)
    assert d.once() and len(ca.attempts) == 1
    assert _status(tmp_path)["certificates"][0]["state"] == "valid"
    clock.t = T0 + 4 * HOUR
    assert d.once() and len(ca.attempts) == 1 and d.skipped == []  # valid and not due: nothing to say
    clock.t = T0 + 5 * HOUR + 1
    d.write_status()
    doc = _status(tmp_path)
    assert doc["certificates"][0]["state"] == "renewal due"
    assert doc["updated"] == dt.datetime.fromtimestamp(clock.t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    clock.t = T0 + 10 * HOUR + 1
    d.write_status()
    assert _status(tmp_path)["certificates"][0]["state"] == "expired"
    ca.script = [HttpStatusError(503, "simplereenroll")]
    assert not d.once()  # due: attempted, failed, and the certificate is expired
    assert len(ca.attempts) == 2
    clock.t += 1
    assert not d.once() and len(ca.attempts) == 2  # backing off
    assert "skipped" in d.skipped[0] and "after 1 failed attempt(s)" in d.skipped[0]
    assert d.once(force=True) and len(ca.attempts) == 3
    assert _status(tmp_path)["certificates"][0]["state"] == "valid"


def test_the_product_uses_the_real_clock(tmp_path):
    import time

    from wvds.est_service.clock import SYSTEM, Clock
    d = renewal.Daemon(Config(state_dir=str(tmp_path), certificates=(CertificateSpec("device", "test"),)))
    assert d.clock is SYSTEM and d.certs[0].clock is SYSTEM and type(SYSTEM) is Clock
    assert abs(SYSTEM.now() - time.time()) < 1
    ev = threading.Event()
    ev.set()
    assert SYSTEM.wait(ev, 5) is True  # an event already set ends the wait at once
    assert SYSTEM.wait(threading.Event(), 0.01) is False
