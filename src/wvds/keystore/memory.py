"""Volatile key store: keys live as long as the service process. For tests and
for devices that provision keys at every boot; never the default for products."""
from __future__ import annotations

import threading

from wvds.keystore.base import KeyRecord, KeyStore, KeyStoreError, register


@register("memory")
class MemoryKeyStore(KeyStore):
    name = "memory"

    def __init__(self, settings: dict):
        unknown = set(settings) - {"backend"}
        if unknown:
            raise KeyStoreError(f"keystore: unknown field(s) for the memory backend: {', '.join(sorted(unknown))}")
        self._records: dict[int, KeyRecord] = {}
        self._lock = threading.Lock()

    def load(self) -> list[KeyRecord]:
        with self._lock:
            return list(self._records.values())

    def save(self, record: KeyRecord) -> None:
        with self._lock:
            self._records[record.key_id] = record

    def delete(self, key_id: int) -> None:
        with self._lock:
            self._records.pop(key_id, None)
