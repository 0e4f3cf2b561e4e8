"""What a handler gets besides the payload: who asks, and the service's shared state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from wvds.crypto_service.config import Config
from wvds.crypto_service.keys import KeyTable, Peer


@dataclass
class RequestContext:
    peer: Peer
    client_id: int
    keys: KeyTable
    config: Config
    status: Callable[[], dict[str, Any]]  # service status document (for STATUS)
