"""Replay detection for keys made before replay windows (docs/replay.md, "Keys from before").

Today's protected keys have structured nonces and a durable window in C
(src/c/service/replay.c). A key created with REPLAY_PROTECT by an earlier
version has random nonces, so it keeps what it had: the exact set of the last
`window` nonces it accepted (FIFO eviction), in memory only, so lost at a restart.
A nonce is recorded only after its tag verified. Memory: about 100 bytes per nonce.
"""
from __future__ import annotations

import collections
import threading


class LegacyReplaySet:
    def __init__(self, window: int):
        self.window = window
        self._seen: set[bytes] = set()
        self._order: collections.deque[bytes] = collections.deque()
        self._lock = threading.Lock()

    def check_and_record(self, nonce: bytes) -> bool:
        """True if nonce is fresh (and now recorded); False if it was seen within the window."""
        with self._lock:
            if nonce in self._seen:
                return False
            self._seen.add(nonce)
            self._order.append(nonce)
            if len(self._order) > self.window:
                self._seen.discard(self._order.popleft())
            return True

    def __len__(self) -> int:
        return len(self._order)
