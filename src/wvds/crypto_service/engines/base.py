"""The engine interface: perform this operation with this key.

An engine generates and opens the keys it holds and performs their private-key operations. `key` in
every operation is the key table's LiveKey: the engine reads what it needs from it (`handle`, what its
own generate/open returned; `pkey`; for AES the invocation counter and replay stream) and leaves the
policy to the key table, which has checked usage, grants and counters before the call.
"""
from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from typing import Any

from wvds import ossl
from wvds.algorithms import REGISTRY
from wvds.keystore import KeyRecord, KeyStoreError
from wvds.protocol.constants import Algorithm, KeyFormat


class Engine(ABC):
    name: str = "?"
    in_process: bool = False  # the key's secret lives in this process (AES: the C fast path may use its bytes)

    @abstractmethod
    def algorithms(self) -> frozenset[Algorithm]:
        """What KEY_GENERATE may create in this engine."""

    @abstractmethod
    def generate(self, key_id: int, algorithm: Algorithm) -> tuple[KeyFormat, bytes, Any]:
        """A new key: (form, material for the record, handle). KeyStoreError if the engine cannot make it."""

    @abstractmethod
    def open(self, record: KeyRecord) -> Any:
        """The handle of a stored key (KeyStoreError, or ServiceError for malformed material)."""

    @abstractmethod
    def openssl_key(self, algorithm: Algorithm, handle: Any) -> "ossl.PKey | None":
        """The key as OpenSSL holds it for public operations (verify, encapsulate, export); None for AES."""

    @abstractmethod
    def nonce_stream_start(self) -> int:
        """The invocation field's first value of a replay-protected AES key's nonce stream (docs/replay.md)."""

    # -- operations with the private key (the defaults: an engine that holds no such keys) -----------
    def aes_gcm_encrypt(self, key, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes, bytes]:
        """(nonce, ciphertext, tag); the nonce is never chosen by a caller."""
        raise self._cannot(key, "encrypt")

    def aes_gcm_decrypt(self, key, nonce: bytes, aad: bytes, ciphertext: bytes, tag: bytes) -> bytes:
        """The plaintext; wvds.ossl.AuthenticationError if the tag does not verify."""
        raise self._cannot(key, "decrypt")

    def mldsa_sign(self, key, message: bytes, context: bytes) -> bytes:
        raise self._cannot(key, "sign")

    def slhdsa_sign(self, key, message: bytes, context: bytes) -> bytes:
        raise self._cannot(key, "sign")

    def ecdsa_sign(self, key, data: bytes, digest: str, prehashed: bool) -> bytes:
        """DER ECDSA-Sig-Value over data hashed with digest ("SHA256"...), or over data itself if prehashed."""
        raise self._cannot(key, "sign")

    def mlkem_decapsulate(self, key, ciphertext: bytes) -> bytes:
        raise self._cannot(key, "decapsulate")

    def _cannot(self, key, operation: str) -> Exception:
        return KeyStoreError(f"{key.algorithm.name} keys of the {self.name} engine cannot {operation}")


class ElementEngine(Engine):
    """An engine in a secure element (TPM, PKCS#11 token): the private key never leaves it, the record holds
    only the element's reference, and public operations run in the FIPS provider on the public half."""

    in_process = False

    def __init__(self, store):
        self.store = store

    def algorithms(self) -> frozenset[Algorithm]:
        return self.store.native_algorithms()  # keystore.native

    def openssl_key(self, algorithm: Algorithm, handle: Any) -> "ossl.PKey | None":
        if algorithm == Algorithm.AES_256_GCM:
            return None
        try:
            return ossl.key_from_public(REGISTRY[algorithm].ossl_name, handle.public_key())
        except ossl.OsslError as e:
            raise KeyStoreError(f"the secure element returned an unusable public key: {e}") from None

    def nonce_stream_start(self) -> int:
        # The element takes the whole IV from us: the counter starts at a value from the FIPS DRBG.
        return struct.unpack(">Q", ossl.random_bytes(8))[0]
