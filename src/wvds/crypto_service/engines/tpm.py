"""The TPM engine: ECDSA P-256 keys generated and used inside the key store's TPM
(keystore.native = ["ecdsa-p256"] of the tpm backend).

The key is created under the storage primary (FIXEDTPM, SENSITIVEDATAORIGIN:
the TPM generates it and it can never leave). The record keeps only the
TPM-wrapped public/private blobs, sealed in its key file like any other key.
Signing loads the key, hashes in the TPM (TPM2_Hash or a hash sequence for
long data), signs with TPM2_Sign and flushes the key again: a TPM without a
resource manager holds only a few objects at a time. The TPM connection, its
lock and its reconnection belong to the key store (TpmKeyStore.run).
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

MAX_HASH_CHUNK = 1024  # MAX_DIGEST_BUFFER of TPM 2.0 implementations
_BLOBS = struct.Struct("<H")  # material = len(public) u16 || public || private


@dataclass(frozen=True)
class TpmEcKey:
    """Handle: the TPM-wrapped blobs (loaded for each signature) and the public point."""
    public: bytes
    private: bytes
    point: bytes

    def public_key(self) -> bytes:
        return self.point


def _alg(digest: str):
    from tpm2_pytss.constants import TPM2_ALG
    return {"SHA256": TPM2_ALG.SHA256, "SHA384": TPM2_ALG.SHA384, "SHA512": TPM2_ALG.SHA512}[digest]


class TpmEngine(ElementEngine):
    name = "tpm"

    def generate(self, key_id: int, algorithm: Algorithm) -> tuple[KeyFormat, bytes, Any]:
        from tpm2_pytss import TSS2_Exception
        if algorithm not in self.algorithms():
            raise KeyStoreError(f"{algorithm.name} keys are not generated in the TPM (keystore.native)")
        try:
            material, handle = self.store.run(lambda: self._create(algorithm))
        except TSS2_Exception as e:
            raise KeyStoreError(f"the TPM could not create an ECDSA P-256 key ({e})") from None
        return KeyFormat.RAW, material, handle

    def _create(self, algorithm: Algorithm) -> tuple[bytes, TpmEcKey]:
        """Under the TPM lock (store.run)."""
        from tpm2_pytss.constants import TPMA_OBJECT
        from tpm2_pytss.types import TPM2B_PUBLIC
        attrs = (TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
                 | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.SIGN_ENCRYPT)
        # the scheme is chosen at each signature
        template = TPM2B_PUBLIC.parse(f"{REGISTRY[algorithm].tpm_curve}:null:null", objectAttributes=attrs)
        ctx = self.store.ctx
        private, public = ctx.create(self.store.primary, None, template)[:2]  # TSS2_Exception: generate reports it
        pub, priv = public.marshal(), private.marshal()
        return _BLOBS.pack(len(pub)) + pub + priv, TpmEcKey(pub, priv, _point(public))

    def open(self, record: KeyRecord) -> Any:
        from tpm2_pytss.types import TPM2B_PUBLIC
        m = record.material
        if record.algorithm != Algorithm.ECDSA_P256 or len(m) < _BLOBS.size:
            raise KeyStoreError("not a TPM ECDSA P-256 key record")
        (n,) = _BLOBS.unpack_from(m)
        pub, priv = m[_BLOBS.size:_BLOBS.size + n], m[_BLOBS.size + n:]
        try:
            public = TPM2B_PUBLIC.unmarshal(pub)[0]
        except Exception:  # noqa: BLE001
            raise KeyStoreError("malformed TPM key blob") from None
        return TpmEcKey(pub, priv, _point(public))

    def ecdsa_sign(self, key, data: bytes, digest: str, prehashed: bool) -> bytes:
        from tpm2_pytss import TSS2_Exception
        try:
            sig = self.store.run(lambda: self._sign(key.handle, data, digest, prehashed))
        except (TSS2_Exception, KeyStoreError) as e:  # a TPM error, or no TPM reachable right now
            raise ossl.OsslError(f"ECDSA in the TPM failed: {e}") from None
        return _der_signature(bytes(sig.signature.ecdsa.signatureR), bytes(sig.signature.ecdsa.signatureS))

    def _sign(self, handle: TpmEcKey, data: bytes, digest: str, prehashed: bool):
        """Under the TPM lock. Uses the store's current ESAPI context and primary: a reconnect changes them."""
        from tpm2_pytss.constants import TPM2_ALG, TPM2_RH, TPM2_ST
        from tpm2_pytss.types import TPM2B_DIGEST, TPM2B_PRIVATE, TPM2B_PUBLIC, TPMT_SIG_SCHEME, TPMT_TK_HASHCHECK
        ctx, alg = self.store.ctx, _alg(digest)
        value = data if prehashed else _tpm_hash(ctx, data, alg)
        loaded = ctx.load(self.store.primary, TPM2B_PRIVATE.unmarshal(handle.private)[0],
                          TPM2B_PUBLIC.unmarshal(handle.public)[0])
        try:
            scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.ECDSA)
            scheme.details.ecdsa.hashAlg = alg
            return ctx.sign(loaded, TPM2B_DIGEST(value), scheme,
                            TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL))
        finally:
            ctx.flush_context(loaded)


def _tpm_hash(ctx, data: bytes, alg) -> bytes:
    from tpm2_pytss.constants import ESYS_TR
    from tpm2_pytss.types import TPM2B_AUTH, TPM2B_MAX_BUFFER
    if len(data) <= MAX_HASH_CHUNK:
        return bytes(ctx.hash(TPM2B_MAX_BUFFER(data), alg, ESYS_TR.OWNER)[0])
    seq = ctx.hash_sequence_start(TPM2B_AUTH(), alg)
    ctx.tr_set_auth(seq, b"")
    for i in range(0, len(data) - MAX_HASH_CHUNK, MAX_HASH_CHUNK):
        ctx.sequence_update(seq, TPM2B_MAX_BUFFER(data[i:i + MAX_HASH_CHUNK]))
    rest = len(data) - (len(data) - 1) % MAX_HASH_CHUNK - 1
    return bytes(ctx.sequence_complete(seq, TPM2B_MAX_BUFFER(data[rest:]), ESYS_TR.OWNER)[0])


def _point(public) -> bytes:
    u = public.publicArea.unique.ecc
    return b"\x04" + bytes(u.x).rjust(32, b"\0") + bytes(u.y).rjust(32, b"\0")


def _der_int(value: bytes) -> bytes:
    value = value.lstrip(b"\0") or b"\0"
    if value[0] & 0x80:
        value = b"\0" + value
    return b"\x02" + bytes([len(value)]) + value


def _der_signature(r: bytes, s: bytes) -> bytes:
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (short lengths suffice up to P-384)."""
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes([len(body)]) + body
