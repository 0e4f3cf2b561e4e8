"""Engines: where an operation with a key runs.

One interface (base.Engine: generate, open, encrypt/decrypt, sign, decapsulate) and its implementations:

  software  the FIPS provider through wvds.ossl; every imported key and every key not generated elsewhere
  tpm       ECDSA P-256 keys generated and used in the key store's TPM (keystore.native)
  pkcs11    AES-256-GCM and ECDSA keys generated and used in the key store's PKCS#11 token (keystore.native)

Each LiveKey knows its engine. Key metadata and policy (owner, usage, grants, counters, replay windows)
stay in the key table (crypto_service/keys.py); handlers call `key.engine.<operation>(key, ...)` and never
ask which engine it is. Public-key operations (verify, encapsulate, export) run in the FIPS provider on
the key's public half whatever engine holds the private one. The key store (wvds.keystore) only stores
the records and keeps the key-encryption key; an element engine uses the store's connection to its device.
"""
from __future__ import annotations

from wvds.crypto_service.engines.base import Engine
from wvds.crypto_service.engines.software import SoftwareEngine

__all__ = ["Engine", "SoftwareEngine", "element_engine"]


def element_engine(store) -> Engine | None:
    """The engine of the key store's secure element; None for a store without one (file, memory).
    Imported here, on demand (tpm2-pytss, python-pkcs11), and by name so that Nuitka compiles them in."""
    if store.name == "tpm":
        from wvds.crypto_service.engines.tpm import TpmEngine
        return TpmEngine(store)
    if store.name == "pkcs11":
        from wvds.crypto_service.engines.pkcs11 import Pkcs11Engine
        return Pkcs11Engine(store)
    return None
