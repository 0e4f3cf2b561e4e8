"""The storage interface every backend implements, and the record it stores."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Callable

from wvds.protocol.constants import Algorithm, KeyFormat


class KeyStoreError(Exception):
    """The backend could not do what was asked; nothing was changed."""


@dataclass(frozen=True)
class KeyRecord:
    key_id: int
    algorithm: Algorithm
    usage: int
    owner_uid: int
    label: str
    created: int  # Unix seconds
    form: KeyFormat  # how `material` encodes the key (SEED / EXPANDED / RAW / PUBLIC)
    material: bytes  # secret for private keys: only ever held by crypto_service
    uses_reserved: int = 0  # AES: invocation counter high-water mark persisted ahead of use

    def with_reserved(self, reserved: int) -> "KeyRecord":
        return replace(self, uses_reserved=reserved)

    def __repr__(self) -> str:  # never print key material
        return (f"KeyRecord(key_id=0x{self.key_id:08x}, algorithm={self.algorithm.name}, owner={self.owner_uid}, "
                f"label={self.label!r}, form={self.form.name})")


class KeyStore(ABC):
    name: str = "?"

    @abstractmethod
    def load(self) -> list[KeyRecord]:
        """Every stored record. Unreadable records are reported (by key id) and skipped."""

    @abstractmethod
    def save(self, record: KeyRecord) -> None:
        """Persist a new or updated record atomically."""

    @abstractmethod
    def delete(self, key_id: int) -> None:
        """Remove a record; the key is gone once this returns."""

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}


_BACKENDS: dict[str, Callable[[dict[str, Any]], KeyStore]] = {}


def register(name: str):
    def deco(factory):
        _BACKENDS[name] = factory
        return factory
    return deco


def open_keystore(settings: dict[str, Any]) -> KeyStore:
    import wvds.keystore.memory  # noqa: F401  (registers itself)
    backend = settings.get("backend")
    if backend not in _BACKENDS:
        raise KeyStoreError(f"keystore.backend: unknown backend {backend!r}; available: {', '.join(sorted(_BACKENDS))}")
    return _BACKENDS[backend](settings)
