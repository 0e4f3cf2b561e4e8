"""Exact replay detection for AES-GCM decrypt: no false positives, by construction.

The original used a Bloom filter over a window of one million nonces, which
rejects some fresh nonces. Here each protected key keeps the exact set of the
last `window` nonces it accepted (FIFO eviction). A nonce is recorded only after
its tag verified, so forged ciphertexts cannot fill the window. A nonce older
than the window is no longer detected (documented; size the window to the
traffic). Memory: about 100 bytes per remembered nonce.
"""
from __future__ import annotations

import collections
import threading


class ReplayWindow:
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
