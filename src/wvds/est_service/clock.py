"""Time as the renewal scheduler sees it: the wall clock and an interruptible wait, in one object.

The daemon (renewal.py) asks only this object what time it is and how to wait, so a test can
hand it a manual clock and drive months of renewals, backoff and expiry without sleeping.
The product always uses SYSTEM.
"""
from __future__ import annotations

import threading
import time


class Clock:
    """The real clock: Unix seconds, and waits that end early when their event is set."""

    def now(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait up to `seconds` for `event`; True if it is set."""
        return event.wait(seconds)


SYSTEM = Clock()
