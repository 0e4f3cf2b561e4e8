"""The storage interface every backend implements, and the record it stores.

A backend persists KeyRecords (load/save/delete) and keeps the key-encryption key.
Backends with a secure element may also have keys generated *natively* in it (the
private key never leaves the TPM/HSM): such a record has `native=True` and its
`material` is only the element's reference to the key; the element's engine
(wvds.crypto_service.engines) opens it and performs its operations.
"""
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
    native: bool = False  # material is a reference to a key inside the TPM/HSM (crypto_service/engines)
    # AES keys with replay protection: the fixed field of the nonces of the latest run that encrypted
    # (docs/replay.md). None: a key from before structured nonces (random nonces; see LiveKey).
    nonce_epoch: int | None = None

    def with_reserved(self, reserved: int) -> "KeyRecord":
        return replace(self, uses_reserved=reserved)

    def __repr__(self) -> str:  # never print key material
        return (f"KeyRecord(key_id=0x{self.key_id:08x}, algorithm={self.algorithm.name}, owner={self.owner_uid}, "
                f"label={self.label!r}, form={self.form.name}, native={self.native})")


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

    def replay_path(self, key_id: int) -> str | None:
        """Where the replay window of key_id lives (docs/replay.md); None: in memory only, like the keys."""
        return None

    def drop_replay(self, key_id: int) -> None:
        """Remove a deleted key's replay window."""

    # -- keys held natively by a secure element (optional) -------------------
    def native_algorithms(self) -> frozenset[Algorithm]:
        """Algorithms whose new keys go to this store's secure element (keystore.native); empty by default."""
        return frozenset()


_BACKENDS: dict[str, Callable[[dict[str, Any]], KeyStore]] = {}
_MODULES = {"memory": "wvds.keystore.memory", "file": "wvds.keystore.file", "tpm": "wvds.keystore.tpm",
            "pkcs11": "wvds.keystore.pkcs11"}


def register(name: str):
    def deco(factory):
        _BACKENDS[name] = factory
        return factory
    return deco


def open_keystore(settings: dict[str, Any]) -> KeyStore:
    """Open the configured backend; KeyStoreError with a message naming the field or the device otherwise.

    Backend modules are imported on demand, so a device without tpm2-pytss or
    python-pkcs11 installed runs the file backend all the same.
    """
    import importlib

    backend = settings.get("backend")
    if backend not in _MODULES:
        raise KeyStoreError(f"keystore.backend: unknown backend {backend!r}; available: {', '.join(sorted(_MODULES))}")
    if backend not in _BACKENDS:
        try:
            importlib.import_module(_MODULES[backend])
        except ImportError as e:
            raise KeyStoreError(f"keystore.backend: the {backend} backend is not installed ({e})") from None
    return _BACKENDS[backend](settings)
