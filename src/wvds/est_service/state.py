"""Per-certificate renewal state, kept across restarts, and the status file the CLI reads.

state.json (beside the generations of one certificate, written atomically):

  renew_after / renew_for  the renewal time drawn (with jitter) for the certificate whose
                           SHA-256 is renew_for: drawn once, so a restart does not redraw it
  failures, next_attempt   exponential backoff after failures
  last_attempt, last_success, last_error
  pending                  an enrollment sent but not finished: key id, whether the key is new,
                           the exact CSR (resent unchanged when polling after 202, also after
                           a restart), operation, credentials used, polls so far, next poll
  retire_keys              keys of superseded generations, deleted from crypto_service once
                           no generation uses them

Times are Unix seconds (float). The status file aggregates every certificate for
`python -m wvds.est_service status`; it never holds secrets.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from wvds.est_service.store import read_json, write_json


@dataclass
class Pending:
    key_id: int
    key_algorithm: str
    new_key: bool
    operation: str  # "simpleenroll" or "simplereenroll"
    credentials: str  # "bootstrap" or "reenroll"
    csr_b64: str = ""
    started: float = 0.0
    polls: int = 0
    next_poll: float = 0.0


@dataclass
class CertState:
    renew_after: float | None = None
    renew_for: str | None = None
    failures: int = 0
    next_attempt: float = 0.0
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    pending: Pending | None = None
    retire_keys: list[int] = field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> "CertState":
        try:
            doc = read_json(path)
        except FileNotFoundError:
            return cls()
        pending = doc.pop("pending", None)
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        st = cls(**known)
        st.pending = Pending(**pending) if pending else None
        return st

    def save(self, path: str) -> None:
        write_json(path, asdict(self))


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def write_status(path: str, entries: list[dict[str, Any]], now: float) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, {"updated": iso(now), "pid": os.getpid(), "certificates": entries})
