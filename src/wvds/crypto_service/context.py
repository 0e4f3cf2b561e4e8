"""What a handler gets besides the payload: who asks, and the service's shared state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from wvds.crypto_service.config import Config
from wvds.crypto_service.fastpath import FastSession
from wvds.crypto_service.keys import KeyTable, LiveKey
from wvds.peer import Peer
from wvds.protocol.constants import KeyUsage

PUBLIC_OPS = KeyUsage.VERIFY | KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET


@dataclass
class RequestContext:
    peer: Peer
    client_id: int
    keys: KeyTable
    config: Config
    status: Callable[[], dict[str, Any]]  # service status document (for STATUS)
    fast: FastSession | None = None  # the client's AES fast path, if it has one

    def grant_fast(self, key: LiveKey) -> None:
        """After an AES request on `key` succeeded here: let the C fast path answer this client's next ones
        with the usage the client has (decrypt unless the key is from before replay windows: its in-memory
        set is in Python)."""
        if self.fast is None or key.counter is None or key.window_error is not None:
            return
        fast_ops = KeyUsage.ENCRYPT | (KeyUsage.DECRYPT if key.replay is None else 0)
        usage = self.keys.usage_for(self.peer, key) & fast_ops
        if usage:
            self.fast.grant(key.key_id, key.counter, int(usage))

    def grant_fast_public(self, key: LiveKey) -> None:
        """After a verify, encaps or decaps on stored `key` succeeded here: the C fast path may answer this
        client's next ones that need no new key (verify; encaps/decaps returning the secret)."""
        if self.fast is None:
            return
        usage = self.keys.usage_for(self.peer, key) & PUBLIC_OPS
        ops = self.keys.public_ops(key) if usage else None
        if ops is not None:
            self.fast.grant_public_key(key.key_id, ops, int(usage))
