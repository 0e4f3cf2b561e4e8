"""Keys generated and used inside the PKCS#11 token (keystore.native of the pkcs11 backend).

AES-256-GCM keys encrypt and decrypt with CKM_AES_GCM in the token; ECDSA keys
sign there (the token hashes with C_Digest, then CKM_ECDSA signs the digest,
which every token offers). The record stores only the objects' CKA_ID, sealed
in its key file like any other key. Private objects are CKA_SENSITIVE and not
extractable: they cannot be exported, so the service only generates them for
requests without EXPORTABLE (docs/keystore.md).
"""
from __future__ import annotations

from wvds import ossl
from wvds.algorithms import REGISTRY
from wvds.keystore.base import KeyRecord, KeyStoreError, NativeKey
from wvds.keystore.fileformat import NONCE_SIZE, TAG_SIZE
from wvds.protocol.constants import Algorithm

CURVES = {a: i.pkcs11_curve for a, i in REGISTRY.items() if i.pkcs11_curve}  # CKA_EC_PARAMS named curve
ID_SIZE = 16


def unavailable_errors() -> tuple[type, ...]:
    """PKCS#11 errors that mean "the token or the object is not there (now)", as opposed to "bad data"."""
    from pkcs11 import exceptions as E
    return (E.ObjectHandleInvalid, E.KeyHandleInvalid, E.NoSuchKey, E.SessionHandleInvalid, E.SessionClosed,
            E.DeviceRemoved, E.DeviceError, E.DeviceMemory, E.TokenNotPresent, E.TokenNotRecognised,
            E.UserNotLoggedIn)


def retry_stale(store, holder, op):
    """op(), with the token lock held by the caller, surviving a token that went away and came back.

    A token that was removed and returned gives its objects new handles, and may have forgotten the
    login (SoftHSM when its token directory vanished and reappeared). On such an error: find the
    object again (holder.refind(), by CKA_ID / label) and retry; if that fails too, reconnect to the
    token (reinitialise the PKCS#11 library, log in again; at most once a second) and retry once more.
    After a reconnect every handle found before it is re-found before use: handle numbers restart,
    and an old number may name a different object now. While the token is still gone the last error
    propagates, and the caller reports it as the operation's failure."""
    from pkcs11 import exceptions as E
    if store.session is None and not store.reconnect_locked():  # an earlier reconnect found no token
        raise E.TokenNotPresent()
    if holder.generation != store.generation:
        holder.refind()
    try:
        return op()
    except unavailable_errors():
        pass
    try:
        holder.refind()
        return op()
    except unavailable_errors():
        if not store.reconnect_locked():
            raise
    holder.refind()
    return op()


def _mech(name: str):
    from pkcs11 import Mechanism
    return {"SHA256": Mechanism.SHA256, "SHA384": Mechanism.SHA384, "SHA512": Mechanism.SHA512}[name]


class TokenAesKey(NativeKey):
    algorithm = Algorithm.AES_256_GCM

    def __init__(self, store, key, ref: bytes):
        self._store, self._key, self._ref, self.generation = store, key, ref, store.generation

    def refind(self) -> None:
        from pkcs11 import KeyType, ObjectClass
        self._key = self._store.session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, id=self._ref)
        self.generation = self._store.generation

    def aes_gcm_encrypt(self, aad: bytes, plaintext: bytes, nonce: bytes | None = None) -> tuple[bytes, bytes, bytes]:
        from pkcs11 import Mechanism, PKCS11Error
        from pkcs11.mechanisms import GCMParams
        # A replay-protected key's nonce comes from its stream (docs/replay.md); otherwise the FIPS DRBG's,
        # the RBG-based construction, as for soft keys.
        nonce = nonce if nonce is not None else ossl.random_bytes(NONCE_SIZE)
        try:
            with self._store.token_lock:
                out = retry_stale(self._store, self, lambda: self._key.encrypt(
                    plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)))
        except PKCS11Error as e:
            raise ossl.OsslError(f"AES-GCM in the token failed ({type(e).__name__})") from None
        return nonce, out[:-TAG_SIZE], out[-TAG_SIZE:]

    def aes_gcm_decrypt(self, nonce: bytes, aad: bytes, ciphertext: bytes, tag: bytes) -> bytes:
        from pkcs11 import Mechanism, PKCS11Error
        from pkcs11.mechanisms import GCMParams
        try:
            with self._store.token_lock:
                return retry_stale(self._store, self, lambda: self._key.decrypt(
                    ciphertext + tag, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)))
        except unavailable_errors() as e:  # not the data's fault: never report it as a failed tag check
            raise ossl.OsslError(f"AES-GCM in the token failed ({type(e).__name__})") from None
        except PKCS11Error:  # the token's way of saying the tag did not verify (varies by vendor)
            raise ossl.AuthenticationError("AES-GCM in the token: tag does not authenticate") from None


class TokenEcKey(NativeKey):
    def __init__(self, store, algorithm: Algorithm, private, point: bytes, ref: bytes):
        self._store, self.algorithm, self._private, self._point, self._ref = store, algorithm, private, point, ref
        self.generation = store.generation

    def refind(self) -> None:
        from pkcs11 import KeyType, ObjectClass
        self._private = self._store.session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC, id=self._ref)
        self.generation = self._store.generation

    def public_key(self) -> bytes:
        return self._point

    def ecdsa_sign(self, data: bytes, digest: str, prehashed: bool) -> bytes:
        from pkcs11 import Mechanism, PKCS11Error
        from pkcs11.util.ec import encode_ecdsa_signature
        try:
            with self._store.token_lock:
                raw = retry_stale(self._store, self, lambda: self._private.sign(
                    self._store.session.digest(data, mechanism=_mech(digest)) if not prehashed else data,
                    mechanism=Mechanism.ECDSA))
        except PKCS11Error as e:
            raise ossl.OsslError(f"ECDSA in the token failed ({type(e).__name__})") from None
        return encode_ecdsa_signature(raw)


def generate(store, key_id: int, algorithm: Algorithm) -> tuple[bytes, NativeKey]:
    from pkcs11 import Attribute, KeyType
    from pkcs11 import exceptions as E
    from pkcs11.util.ec import encode_named_curve_parameters
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
                return ref, TokenAesKey(store, key, ref)
            params = store.session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(CURVES[algorithm])}, local=True)
            public, private = params.generate_keypair(
                id=ref, label=label, store=True, public_template={Attribute.VERIFY: True},
                private_template={**secret_attrs, Attribute.SIGN: True, Attribute.DERIVE: False})
            point = _point(public)
    except E.PKCS11Error as e:
        raise KeyStoreError(f"the token could not generate a {algorithm.name} key ({type(e).__name__})") from None
    return ref, TokenEcKey(store, algorithm, private, point, ref)


def open_key(store, record: KeyRecord) -> NativeKey:
    from pkcs11 import KeyType, ObjectClass
    from pkcs11 import exceptions as E
    try:
        with store.token_lock:
            if record.algorithm == Algorithm.AES_256_GCM:
                key = store.session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, id=record.material)
                return TokenAesKey(store, key, record.material)
            private = store.session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC, id=record.material)
            public = store.session.get_key(ObjectClass.PUBLIC_KEY, KeyType.EC, id=record.material)
            return TokenEcKey(store, record.algorithm, private, _point(public), record.material)
    except (E.NoSuchKey, E.MultipleObjectsReturned) as e:
        raise KeyStoreError(f"the token object of this key is missing or ambiguous ({type(e).__name__})") from None


def destroy(store, reference: bytes) -> None:
    with store.token_lock:
        for obj in list(store.session.get_objects({_id_attr(): reference})):
            obj.destroy()


def _id_attr():
    from pkcs11 import Attribute
    return Attribute.ID


def _point(public) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (PKCS#11 2.40+); accept a raw one too."""
    from asn1crypto.core import OctetString
    from pkcs11 import Attribute
    value = public[Attribute.EC_POINT]
    if value[:1] == b"\x04" and len(value) in (65, 97):
        return bytes(value)
    return OctetString.load(value).native
