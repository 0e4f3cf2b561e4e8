"""The device key, held by crypto_service: generate it, read its public key, have it sign.

The private key never enters this process. What we keep is the key id (and the
label we gave the key, so keys orphaned by a crash can be found and deleted).
ML-DSA signs the message itself (pure mode, empty context: RFC 9881); ECDSA
signs a SHA-256/384 digest we compute here (PREHASHED), so any size of data fits
one request.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass

from wvds import ossl
from wvds.algorithms import est_device_keys
from wvds.client import Client, ServiceStatusError, TransportFailure
from wvds.est_service import asn1
from wvds.est_service.errors import KeyServiceError
from wvds.protocol.constants import EcdsaFlags, HashAlg, KeyUsage, Status

log = logging.getLogger("wvds.est.keys")

# From the algorithm registry: ossl name (key.json) -> crypto_service algorithm id, of the device key algorithms
ALGORITHMS = {i.ossl_name: i.algorithm for i in est_device_keys()}
# config name (the key reference's, or the ossl name) -> ossl name
CONFIG_NAMES = {name: i.ossl_name for i in est_device_keys() for name in (i.keyref_name, i.ossl_name)}
BY_ID = {v: k for k, v in ALGORITHMS.items()}


@dataclass(frozen=True)
class DeviceKey:
    key_id: int
    algorithm: str  # ossl name
    public_key: bytes  # raw (FIPS 204 encoding / uncompressed EC point)

    @property
    def spki_der(self) -> bytes:
        """SubjectPublicKeyInfo as OpenSSL encodes it (the key is also validated on import)."""
        with ossl.key_from_public(self.algorithm, self.public_key) as pk:
            return ossl.public_key_der(pk)


class KeyService:
    """One connection to crypto_service, opened on first use and reopened after a transport failure."""

    def __init__(self, socket_path: str, timeout_ms: int = 10_000):
        self.socket_path, self.timeout_ms = socket_path, timeout_ms
        self._client: Client | None = None
        self._lock = threading.Lock()

    def _call(self, what: str, fn):
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._client is None:
                        self._client = Client(self.socket_path, timeout_ms=self.timeout_ms)
                    return fn(self._client)
                except TransportFailure as e:
                    self.close_locked()
                    if attempt == 2:
                        raise KeyServiceError(f"crypto_service unreachable ({what}): {e}") from None
                except ServiceStatusError as e:
                    raise KeyServiceError(f"crypto_service refused {what}: {e.status.name}",
                                          key_missing=e.status == Status.KEY_NOT_FOUND) from None

    def close_locked(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()

    def generate(self, algorithm: str, label: str) -> DeviceKey:
        usage = KeyUsage.SIGN | KeyUsage.VERIFY
        created = self._call(f"generate {algorithm} key",
                             lambda c: c.generate_key(ALGORITHMS[algorithm], int(usage), label))
        log.info("generated device key", extra={"key_id": created.key_id, "algorithm": algorithm, "label": label})
        return DeviceKey(created.key_id, algorithm, created.public_key)

    def load(self, key_id: int) -> DeviceKey:
        """The key as crypto_service holds it now (KeyServiceError with key_missing if it is gone)."""
        pub = self._call(f"export public key {key_id}", lambda c: c.export_public(key_id))
        if pub.algorithm not in BY_ID:
            raise KeyServiceError(f"key {key_id} is {pub.algorithm.name}, not a signature key")
        return DeviceKey(key_id, BY_ID[pub.algorithm], pub.public_key)

    def describe(self, key_id: int):
        """crypto_service's description of the key (KEY_DESCRIBE: algorithm, usage, owner, uses, label);
        KeyServiceError with key_missing if it is gone."""
        return self._call(f"describe key {key_id:#010x}", lambda c: c.describe_key(key_id))

    def sign(self, key: DeviceKey, message: bytes) -> tuple[str, bytes]:
        """(signature algorithm OID, signature) over message with the device key."""
        if key.algorithm.startswith("ML-DSA"):
            sig = self._call(f"ML-DSA sign with key {key.key_id}", lambda c: c.mldsa_sign(key.key_id, message, b""))
            return asn1.ML_DSA_BY_NAME[key.algorithm], sig
        oid, digest_name = asn1.ECDSA_SIG_FOR_KEY[key.algorithm]
        digest = hashlib.new(digest_name.lower(), message).digest()
        hash_alg = HashAlg.SHA256 if digest_name == "SHA256" else HashAlg.SHA384
        sig = self._call(f"ECDSA sign with key {key.key_id}",
                         lambda c: c.ecdsa_sign(key.key_id, digest, hash_alg, int(EcdsaFlags.PREHASHED)))
        return oid, sig

    def delete(self, key_id: int) -> bool:
        """Delete a key we no longer need; False (logged) if that fails: a leftover key is harmless."""
        try:
            self._call(f"delete key {key_id}", lambda c: c.delete_key(key_id))
            log.info("deleted device key", extra={"key_id": key_id})
            return True
        except KeyServiceError as e:
            if e.key_missing:
                return True
            log.warning("could not delete device key", extra={"key_id": key_id, "error": str(e)})
            return False

    def own_keys_labelled(self, label: str) -> list[int]:
        """Ids of keys this uid owns with exactly this label (to find keys orphaned by a crash)."""
        def find(c: Client) -> list[int]:
            out = []
            uid = os.getuid()
            for key_id, alg in c.list_keys():
                if alg not in BY_ID:
                    continue
                d = c.describe_key(key_id)
                if d.owner_uid == uid and d.label == label:
                    out.append(key_id)
            return out
        return self._call("list keys", find)
