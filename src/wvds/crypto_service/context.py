"""What a handler gets besides the payload: who asks, and the service's shared state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from wvds.crypto_service.config import Config
from wvds.crypto_service.fastpath import FastSession
from wvds.crypto_service.keys import KeyTable, LiveKey
from wvds.peer import Peer
from wvds.protocol.constants import KeyUsage

PKEY_OPS = KeyUsage.SIGN | KeyUsage.VERIFY | KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET


@dataclass
class RequestContext:
    peer: Peer
    client_id: int
    keys: KeyTable
    config: Config
    status: Callable[[], dict[str, Any]]  # service status document (for STATUS)
    fast: FastSession | None = None  # the client's C fast path, if it has one

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

    def grant_fast_pkey(self, key: LiveKey) -> None:
        """After a signature, verify, encaps or decaps with stored `key` succeeded here: the C fast path may answer
        this client's next ones that need no new key (signatures and decaps only with a key of the FIPS provider;
        encaps/decaps only returning the secret)."""
        if self.fast is None:
            return
        usage = self.keys.usage_for(self.peer, key) & PKEY_OPS
        fast_key = self.keys.fast_key(key) if usage else None
        if fast_key is not None and not fast_key.private_ops:  # a TPM/HSM key signs and decapsulates there
            usage &= ~int(KeyUsage.SIGN | KeyUsage.DECAPS)
        if fast_key is not None and usage:
            self.fast.grant_pkey(key.key_id, fast_key, int(usage))
