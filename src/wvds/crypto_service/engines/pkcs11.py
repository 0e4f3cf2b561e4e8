"""The PKCS#11 engine: keys generated and used inside the key store's token (keystore.native of the pkcs11
backend).

AES-256-GCM keys encrypt and decrypt with CKM_AES_GCM in the token; ECDSA keys
sign there (the token hashes with C_Digest, then CKM_ECDSA signs the digest,
which every token offers). The record stores only the objects' CKA_ID, sealed
in its key file like any other key. Private objects are CKA_SENSITIVE and not
extractable: they cannot be exported, so the service only generates them for
requests without EXPORTABLE (docs/keystore.md). The token session, its lock and
its recovery after a token loss (retry_stale) belong to the key store.
"""
from __future__ import annotations

from typing import Any

from wvds import ossl
from wvds.algorithms import REGISTRY
from wvds.crypto_service.engines.base import ElementEngine
from wvds.keystore import KeyRecord, KeyStoreError
from wvds.keystore.fileformat import NONCE_SIZE, TAG_SIZE
from wvds.keystore.pkcs11 import retry_stale, unavailable_errors
from wvds.protocol.constants import Algorithm, KeyFormat

CURVES = {a: i.pkcs11_curve for a, i in REGISTRY.items() if i.pkcs11_curve}  # CKA_EC_PARAMS named curve
ID_SIZE = 16


def _mech(name: str):
    from pkcs11 import Mechanism
    return {"SHA256": Mechanism.SHA256, "SHA384": Mechanism.SHA384, "SHA512": Mechanism.SHA512}[name]


class TokenAesKey:
    """Handle: the token's AES key object, found again by CKA_ID after a token loss (retry_stale)."""

    def __init__(self, store, key, ref: bytes):
        self._store, self.key, self._ref, self.generation = store, key, ref, store.generation

    def refind(self) -> None:
        from pkcs11 import KeyType, ObjectClass
        self.key = self._store.session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, id=self._ref)
        self.generation = self._store.generation

    def public_key(self) -> bytes:
        return b""


class TokenEcKey:
    """Handle: the token's EC private key object and the public point."""

    def __init__(self, store, private, point: bytes, ref: bytes):
        self._store, self.private, self._point, self._ref = store, private, point, ref
        self.generation = store.generation

    def refind(self) -> None:
        from pkcs11 import KeyType, ObjectClass
        self.private = self._store.session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC, id=self._ref)
        self.generation = self._store.generation

    def public_key(self) -> bytes:
        return self._point


class Pkcs11Engine(ElementEngine):
    name = "pkcs11"

    def generate(self, key_id: int, algorithm: Algorithm) -> tuple[KeyFormat, bytes, Any]:
        from pkcs11 import Attribute, KeyType
        from pkcs11 import exceptions as E
        from pkcs11.util.ec import encode_named_curve_parameters
        store = self.store
        if algorithm not in self.algorithms():
            raise KeyStoreError(f"{algorithm.name} keys are not generated in the token (keystore.native)")
        ref = ossl.random_bytes(ID_SIZE)
        label = f"wvds-{key_id:08x}"
        secret_attrs = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True}
        try:
            with store.token_lock:
                if algorithm == Algorithm.AES_256_GCM:
                    key = store.session.generate_key(KeyType.AES, 256, id=ref, label=label, store=True,
                                                     template={**secret_attrs, Attribute.ENCRYPT: True,
                                                               Attribute.DECRYPT: True, Attribute.WRAP: False,
                                                               Attribute.UNWRAP: False})
                    return KeyFormat.RAW, ref, TokenAesKey(store, key, ref)
                params = store.session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(CURVES[algorithm])}, local=True)
                public, private = params.generate_keypair(
                    id=ref, label=label, store=True, public_template={Attribute.VERIFY: True},
                    private_template={**secret_attrs, Attribute.SIGN: True, Attribute.DERIVE: False})
                point = _point(public)
        except E.PKCS11Error as e:
            raise KeyStoreError(f"the token could not generate a {algorithm.name} key ({type(e).__name__})") from None
        return KeyFormat.RAW, ref, TokenEcKey(store, private, point, ref)

    def open(self, record: KeyRecord) -> Any:
        from pkcs11 import KeyType, ObjectClass
        from pkcs11 import exceptions as E
        store = self.store
        try:
            with store.token_lock:
                if record.algorithm == Algorithm.AES_256_GCM:
                    key = store.session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, id=record.material)
                    return TokenAesKey(store, key, record.material)
                private = store.session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC, id=record.material)
                public = store.session.get_key(ObjectClass.PUBLIC_KEY, KeyType.EC, id=record.material)
                return TokenEcKey(store, private, _point(public), record.material)
        except (E.NoSuchKey, E.MultipleObjectsReturned) as e:
            raise KeyStoreError(f"the token object of this key is missing or ambiguous ({type(e).__name__})") from None

    def aes_gcm_encrypt(self, key, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes, bytes]:
        from pkcs11 import Mechanism, PKCS11Error
        from pkcs11.mechanisms import GCMParams
        # A replay-protected key's nonce comes from its stream (docs/replay.md); otherwise the FIPS DRBG's,
        # the RBG-based construction, as for software keys.
        nonce = key.counter.next_nonce() if key.windowed else ossl.random_bytes(NONCE_SIZE)
        h = key.handle
        try:
            with self.store.token_lock:
                out = retry_stale(self.store, h, lambda: h.key.encrypt(
                    plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)))
        except PKCS11Error as e:
            raise ossl.OsslError(f"AES-GCM in the token failed ({type(e).__name__})") from None
        return nonce, out[:-TAG_SIZE], out[-TAG_SIZE:]

    def aes_gcm_decrypt(self, key, nonce: bytes, aad: bytes, ciphertext: bytes, tag: bytes) -> bytes:
        from pkcs11 import Mechanism, PKCS11Error
        from pkcs11.mechanisms import GCMParams
        h = key.handle
        try:
            with self.store.token_lock:
                return retry_stale(self.store, h, lambda: h.key.decrypt(
                    ciphertext + tag, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)))
        except unavailable_errors() as e:  # not the data's fault: never report it as a failed tag check
            raise ossl.OsslError(f"AES-GCM in the token failed ({type(e).__name__})") from None
        except PKCS11Error:  # the token's way of saying the tag did not verify (varies by vendor)
            raise ossl.AuthenticationError("AES-GCM in the token: tag does not authenticate") from None

    def ecdsa_sign(self, key, data: bytes, digest: str, prehashed: bool) -> bytes:
        from pkcs11 import Mechanism, PKCS11Error
        from pkcs11.util.ec import encode_ecdsa_signature
        store, h = self.store, key.handle
        try:
            with store.token_lock:
                raw = retry_stale(store, h, lambda: h.private.sign(
                    store.session.digest(data, mechanism=_mech(digest)) if not prehashed else data,
                    mechanism=Mechanism.ECDSA))
        except PKCS11Error as e:
            raise ossl.OsslError(f"ECDSA in the token failed ({type(e).__name__})") from None
        return encode_ecdsa_signature(raw)


def _point(public) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (PKCS#11 2.40+); accept a raw one too."""
    from asn1crypto.core import OctetString
    from pkcs11 import Attribute
    value = public[Attribute.EC_POINT]
    if value[:1] == b"\x04" and len(value) in (65, 97):
        return bytes(value)
    return OctetString.load(value).native
