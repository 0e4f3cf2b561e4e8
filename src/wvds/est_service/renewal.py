"""The renewal daemon: when to (re-)enroll each configured certificate, and what to do after.

Schedule per certificate:
* no certificate yet -> enroll now (then, after failures, at the backoff time);
* a certificate valid from nb to na -> renew at nb + (renew_at + u) * (na - nb), u drawn
  once per certificate uniformly from [-jitter/2, +jitter/2] so a fleet spreads out,
  and stored, so a restart does not draw again;
* a pending request (202) -> at its next poll time;
* after a failure -> not before now + min(retry.max_s, retry.initial_s * 2^(failures-1)),
  times a random factor in [0.5, 1] (decorrelates a fleet hitting a recovering server).
An expired certificate is renewed with the bootstrap credentials (simpleenroll) if
configured and `bootstrap_on_expiry` is on.

One worker thread does the attempts; the main thread waits for SIGTERM/SIGINT,
then cancels the request in flight (its socket is shut down) and joins the worker.
A cancelled attempt commits nothing. The status file is rewritten atomically
after every change.

The schedule reads the time and waits between attempts only through its clock (clock.py:
the real one, or a test's manual one); an attempt itself (enroll.py: TLS, 202 polling,
certificate validity) runs on real time.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import threading
from typing import Any

from wvds.est_service.clock import SYSTEM, Clock
from wvds.est_service.config import CertificateSpec, Config
from wvds.est_service.enroll import Enrollment, Outcome
from wvds.est_service.errors import AuthError, Cancelled, EstError
from wvds.est_service.http import Cancel
from wvds.est_service.keys import KeyService
from wvds.est_service.state import CertState, iso, write_status
from wvds.est_service.store import CertStore, Credential

log = logging.getLogger("wvds.est.renewal")

MAX_SLEEP_S = 60.0  # wake up at least this often (clock jumps, a status refresh)


def backoff_delay(failures: int, initial_s: float, max_s: float, auth_failure: bool = False,
                  rnd: random.Random | None = None) -> float:
    """Seconds to wait after the n-th consecutive failure: min(max_s, initial_s * 2^(n-1)) * U(0.5, 1).

    After 401/403 at least min(max_s, 4 * initial_s): credentials do not fix themselves at once.
    """
    delay = min(max_s, initial_s * 2 ** min(max(failures, 1) - 1, 30))
    delay *= (rnd or random).uniform(0.5, 1.0)
    if auth_failure:
        delay = max(delay, min(max_s, initial_s * 4))
    return delay


class Managed:
    """One configured certificate: its store, its state, its schedule."""

    def __init__(self, cfg: Config, spec: CertificateSpec, clock: Clock = SYSTEM):
        self.cfg, self.spec, self.clock = cfg, spec, clock
        self.dir = os.path.join(cfg.state_dir, "certs", spec.name)
        self.store = CertStore(self.dir)
        self.state_path = os.path.join(self.dir, "state.json")
        self.state = CertState()
        self.current: Credential | None = None
        self.load_error: str | None = None

    def load(self) -> list[int]:
        orphans = self.store.repair()
        self.state = CertState.load(self.state_path)
        self.state.retire_keys += orphans
        try:
            self.current = self.store.current()
            self.load_error = None
        except EstError as e:
            self.current, self.load_error = None, str(e)
            log.error("current certificate unreadable", extra={"certificate": self.spec.name, "error": str(e)})
        p = self.state.pending
        if p is not None and self.current is not None and p.csr_b64 and self.current.csr_sha256 == \
                hashlib.sha256(base64.b64decode(p.csr_b64)).hexdigest():
            # a crash between the commit and clearing the request: it is answered already. Finish what
            # the commit would have done next: the key it superseded (now the previous generation's) is
            # retired, i.e. deleted once no kept generation uses it (else it outlives its generation).
            log.info("pending request was already committed", extra={"certificate": self.spec.name})
            self.state.pending = None
            prev = self.store.previous()
            if prev is not None and prev.key_id != self.current.key_id and prev.key_id not in self.state.retire_keys:
                self.state.retire_keys.append(prev.key_id)
            self.save()
        return orphans

    def save(self) -> None:
        self.state.save(self.state_path)

    def renew_time(self) -> float | None:
        """When the current certificate is due, drawing (once) the jittered point."""
        cur = self.current
        if cur is None:
            return None
        if self.state.renew_for != cur.cert.fingerprint or self.state.renew_after is None:
            nb, na = cur.cert.not_before.timestamp(), cur.cert.not_after.timestamp()
            u = random.uniform(-self.spec.jitter / 2, self.spec.jitter / 2)
            self.state.renew_after = nb + (self.spec.renew_at + u) * (na - nb)
            self.state.renew_for = cur.cert.fingerprint
            self.save()
        return self.state.renew_after

    def due(self) -> float:
        st = self.state
        if st.pending is not None:
            return max(st.pending.next_poll, st.next_attempt if st.failures else 0.0)
        base = self.renew_time()
        t = 0.0 if base is None else base
        return max(t, st.next_attempt) if st.failures else t

    def status(self) -> dict[str, Any]:
        cur, st = self.current, self.state
        now = self.clock.now()
        self.renew_time()  # draws the renewal point if this certificate has none yet
        entry: dict[str, Any] = {"name": self.spec.name, "server": self.spec.server}
        if cur is None:
            entry["state"] = "unreadable" if self.load_error else "not enrolled"
        else:
            na = cur.cert.not_after.timestamp()
            entry.update({
                "state": "expired" if na <= now else ("renewal due" if (st.renew_after or na) <= now else "valid"),
                "subject": cur.cert.subject_text, "serial": cur.cert.serial_hex, "san": cur.cert.san_text,
                "not_before": iso(cur.cert.not_before.timestamp()), "not_after": iso(na),
                "key_id": cur.key_id, "key_algorithm": cur.key_algorithm, "generation": cur.generation,
                "certificate": os.path.join(self.dir, "current", "cert.pem"),
                "differs_from_request": list(cur.differences),
            })
        entry.update({
            "renew_after": iso(st.renew_after) if cur is not None else None,
            "next_attempt": iso(self.due()),
            "last_attempt": iso(st.last_attempt), "last_success": iso(st.last_success),
            "last_error": st.last_error or self.load_error, "failures": st.failures,
            "pending": None if st.pending is None else {"operation": st.pending.operation, "polls": st.pending.polls,
                                                         "since": iso(st.pending.started)},
        })
        return entry


class Daemon:
    def __init__(self, cfg: Config, clock: Clock = SYSTEM):
        self.cfg, self.clock = cfg, clock
        self.skipped: list[str] = []  # once(): certificates not attempted that are not valid or failing
        self.keys = KeyService(cfg.crypto_socket, cfg.crypto_timeout_ms)
        self.certs = [Managed(cfg, spec, clock) for spec in cfg.certificates]
        self.cancel = Cancel()
        self._status_lock = threading.Lock()

    # --- start-up ------------------------------------------------------------------------------------
    def start(self) -> None:
        for m in self.certs:
            m.load()
        self.reap_keys(startup=True)
        self.write_status()

    def reap_keys(self, startup: bool = False) -> None:
        """Delete keys nothing uses any more: superseded ones, and (at start-up) keys orphaned by a crash."""
        for m in self.certs:
            keep = self._keys_in_use(m)
            if startup:
                try:
                    labelled = self.keys.own_keys_labelled(m.spec.key_label)
                except EstError as e:
                    log.warning("cannot list keys in crypto_service", extra={"error": str(e)})
                    labelled = []
                m.state.retire_keys += [k for k in labelled if k not in keep and k not in m.state.retire_keys]
            left = []
            for k in dict.fromkeys(m.state.retire_keys):
                if k in keep:
                    left.append(k)  # still used by the current or previous generation or a pending request
                    continue
                if not self.keys.delete(k):
                    left.append(k)
            if left != m.state.retire_keys:
                m.state.retire_keys = left
                m.save()

    def _keys_in_use(self, m: Managed) -> set[int]:
        keep = set()
        if m.current is not None:
            keep.add(m.current.key_id)
        prev = m.store.previous()
        if prev is not None:
            keep.add(prev.key_id)
        if m.state.pending is not None:
            keep.add(m.state.pending.key_id)
        return keep

    # --- attempts --------------------------------------------------------------------------------------
    def attempt(self, m: Managed) -> Outcome | None:
        st = m.state
        st.last_attempt = self.clock.now()
        m.save()
        try:
            outcome = Enrollment(self.cfg, m.spec, self.keys, m.store, st, m.state_path, self.cancel).run()
        except Cancelled:
            log.info("attempt abandoned: stopping", extra={"certificate": m.spec.name})
            raise
        except EstError as e:
            self._failed(m, e)
            return None
        except Exception as e:  # a bug: report it, keep the daemon and the current pair
            log.exception("unexpected error during enrollment", extra={"certificate": m.spec.name})
            self._failed(m, EstError(f"internal error: {type(e).__name__}: {e}"))
            return None
        m.current = outcome.credential
        st.failures, st.next_attempt, st.last_error = 0, 0.0, None
        st.last_success = self.clock.now()
        st.renew_after, st.renew_for = None, None
        m.save()
        self.reap_keys()
        self.write_status()
        return outcome

    def _failed(self, m: Managed, e: EstError) -> None:
        st = m.state
        st.failures += 1
        r = m.spec.retry
        delay = backoff_delay(st.failures, r.initial_s, r.max_s, isinstance(e, AuthError))
        st.next_attempt = self.clock.now() + delay
        st.last_error = str(e)
        m.save()
        log.warning("enrollment failed; keeping the current certificate",
                    extra={"certificate": m.spec.name, "error": str(e), "error_type": type(e).__name__,
                           "failures": st.failures, "retry_in_s": round(delay, 1)})
        self.reap_keys()
        self.write_status()

    def once(self, force: bool = False, names: list[str] | None = None) -> bool:
        """One pass: attempt every (selected) certificate that is due (or all, with force).

        True if every attempt made succeeded and every selected certificate is valid now.
        """
        ok = True
        self.skipped = []
        for m in self.certs:
            if names and m.spec.name not in names:
                continue
            due = m.due()
            if force or due <= self.clock.now():
                ok = self.attempt(m) is not None and ok
            elif m.current is None or m.state.failures:  # not attempted, and it needs attention: say why
                st = m.state
                why = (f"after {st.failures} failed attempt(s) (last error: {st.last_error})" if st.failures
                       else "a request is pending at the server" if st.pending is not None else "not yet due")
                self.skipped.append(f"{m.spec.name}: skipped, the next attempt is due at {iso(due)} {why}; "
                                    "--force attempts it now")
        self.write_status()
        now = self.clock.now()
        return ok and all(m.current is not None and m.current.cert.not_after.timestamp() > now
                          for m in self.certs if not names or m.spec.name in names)

    def run(self, stop: threading.Event) -> None:
        """Until stop is set: attempt whatever is due, then sleep until the next due time."""
        while not stop.is_set():
            now = self.clock.now()
            for m in self.certs:
                if stop.is_set():
                    break
                if m.due() <= now:
                    try:
                        self.attempt(m)  # writes the status file
                    except Cancelled:
                        return
            next_due = min((m.due() for m in self.certs), default=now + MAX_SLEEP_S)
            self.clock.wait(stop, min(MAX_SLEEP_S, max(0.05, next_due - self.clock.now())))

    def stop(self) -> None:
        self.cancel.cancel()

    def close(self) -> None:
        self.keys.close()

    # --- status -----------------------------------------------------------------------------------------
    def write_status(self) -> None:
        with self._status_lock:
            write_status(self.cfg.status_file, [m.status() for m in self.certs], self.clock.now())
