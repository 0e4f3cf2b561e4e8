"""The TPM engine: ECDSA P-256 keys generated and used inside the key store's TPM
(keystore.native = ["ecdsa-p256"] of the tpm backend).

The key is created under the storage primary (FIXEDTPM, SENSITIVEDATAORIGIN:
the TPM generates it and it can never leave). The record keeps only the
TPM-wrapped public/private blobs, sealed in its key file like any other key.
Signing hashes in the FIPS provider (the key is not restricted, so the TPM signs
any digest, and hashing in the TPM would cost a command per KiB under the TPM
lock), loads the key, signs with TPM2_Sign and flushes the key again: a TPM
without a resource manager holds only a few objects at a time. The TPM
connection, its lock and its reconnection belong to the key store
(TpmKeyStore.run).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from wvds import ossl
from wvds.algorithms import REGISTRY
from wvds.crypto_service.engines.base import ElementEngine
from wvds.keystore import KeyRecord, KeyStoreError
from wvds.protocol.constants import Algorithm, KeyFormat
from wvds.tpm2 import wire
from wvds.tpm2.esys import TpmError

_BLOBS = struct.Struct("<H")  # material = len(public) u16 || public || private
P256_SIZE = 32  # bytes of r and of s at most (the only curve keys are made for here)


@dataclass(frozen=True)
class TpmEcKey:
    """Handle: the TPM-wrapped blobs (loaded for each signature) and the public point."""
    public: bytes
    private: bytes
    point: bytes

    def public_key(self) -> bytes:
        return self.point


class TpmEngine(ElementEngine):
    name = "tpm"

    def generate(self, key_id: int, algorithm: Algorithm) -> tuple[KeyFormat, bytes, Any]:
        if algorithm not in self.algorithms():
            raise KeyStoreError(f"{algorithm.name} keys are not generated in the TPM (keystore.native)")
        try:
            material, handle = self.store.run(lambda: self._create(algorithm))
        except (TpmError, wire.WireError) as e:
            raise KeyStoreError(f"the TPM could not create an ECDSA P-256 key ({e})") from None
        return KeyFormat.RAW, material, handle

    def _create(self, algorithm: Algorithm) -> tuple[bytes, TpmEcKey]:
        """Under the TPM lock (store.run)."""
        attrs = wire.FIXEDTPM | wire.FIXEDPARENT | wire.SENSITIVEDATAORIGIN | wire.USERWITHAUTH | wire.SIGN_ENCRYPT
        template = wire.ecc_template(REGISTRY[algorithm].tpm_curve, attrs)  # the scheme is chosen at each signature
        priv, pub = self.store.ctx.create(self.store.primary, wire.sensitive_create(), template)
        return _BLOBS.pack(len(pub)) + pub + priv, TpmEcKey(pub, priv, wire.ecc_public_point(pub))

    def open(self, record: KeyRecord) -> Any:
        m = record.material
        if record.algorithm != Algorithm.ECDSA_P256 or len(m) < _BLOBS.size:
            raise KeyStoreError("not a TPM ECDSA P-256 key record")
        (n,) = _BLOBS.unpack_from(m)
        pub, priv = m[_BLOBS.size:_BLOBS.size + n], m[_BLOBS.size + n:]
        try:
            wire.tpm2b_content(priv)
            return TpmEcKey(pub, priv, wire.ecc_public_point(pub))
        except wire.WireError:
            raise KeyStoreError("malformed TPM key blob") from None

    def ecdsa_sign(self, key, data: bytes, digest: str, prehashed: bool) -> bytes:
        value = data if prehashed else ossl.ecdsa_digest(data, digest)
        try:
            r, s = wire.ecdsa_signature(self.store.run(lambda: self._sign(key.handle, value, digest)))
        except (TpmError, wire.WireError, KeyStoreError) as e:  # a TPM error, or no TPM reachable right now
            raise ossl.OsslError(f"ECDSA in the TPM failed: {e}") from None
        if not (0 < len(r) <= P256_SIZE and 0 < len(s) <= P256_SIZE):  # what came back over the TPM bus
            raise ossl.OsslError(f"ECDSA in the TPM failed: r/s of {len(r)}/{len(s)} bytes for P-256")
        return _der_signature(r, s)

    def _sign(self, handle: TpmEcKey, value: bytes, digest: str) -> bytes:
        """Under the TPM lock. Uses the store's current ESAPI context and primary: a reconnect changes them."""
        ctx = self.store.ctx
        loaded = ctx.load(self.store.primary, handle.private, handle.public)
        try:
            return ctx.sign(loaded, value, wire.ecdsa_scheme(digest), wire.null_hashcheck())
        finally:
            ctx.flush(loaded)


def _der_int(value: bytes) -> bytes:
    value = value.lstrip(b"\0") or b"\0"
    if value[0] & 0x80:
        value = b"\0" + value
    return b"\x02" + bytes([len(value)]) + value


def _der_signature(r: bytes, s: bytes) -> bytes:
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (short lengths suffice up to P-384)."""
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes([len(body)]) + body
