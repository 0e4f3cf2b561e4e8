"""HSM backend over PKCS#11: an AES-256 key inside the token is the KEK.

The KEK is generated in the token (CKA_SENSITIVE, not extractable) and every
key file is sealed and opened by the token itself with CKM_AES_GCM; the KEK
never exists outside the HSM. HSMs have no ML-DSA/ML-KEM, so those keys are
key files sealed this way. With `native`, AES-256-GCM and ECDSA keys are
generated and used inside the token by the PKCS#11 engine
(crypto_service/engines/pkcs11.py), through this store's session (`retry_stale`).

The token is used through one logged-in read-write session; PKCS#11 sessions
must not be used by two threads at once, so a lock serializes token calls.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from wvds import ossl
from wvds.algorithms import cli_names
from wvds.keystore.base import KeyStoreError, register
from wvds.keystore.directory import EncryptedDirectoryStore
from wvds.keystore.fileformat import NONCE_SIZE, TAG_SIZE
from wvds.keystore.kek import Kek, KekAuthError
from wvds.keystore.settings import Fields, read_secret
from wvds.protocol.constants import Algorithm

log = logging.getLogger("wvds.keystore.pkcs11")
DEFAULT_KEK_LABEL = "wvds-keystore-kek"
RECONNECT_INTERVAL_S = 1.0
# keystore.native: the algorithms the token can generate and use, by their cli names ("ecdsa-p256")
NATIVE_NAMES = cli_names((Algorithm.AES_256_GCM, Algorithm.ECDSA_P256, Algorithm.ECDSA_P384))


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


class TokenKek(Kek):
    """AES-256-GCM performed by the token; the 96-bit IV comes from the FIPS DRBG (SP 800-38D 8.2.2)."""

    kind = "pkcs11-token"

    def __init__(self, key, lock: threading.Lock, store: "Pkcs11KeyStore"):
        self._key, self._lock, self._store = key, lock, store  # store: to find the KEK again after a token loss
        self.generation = store.generation

    def refind(self) -> None:
        key = self._store._find_kek_locked()
        if key is None:
            from pkcs11.exceptions import NoSuchKey
            raise NoSuchKey()
        self._key, self.generation = key, self._store.generation

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams
        nonce = ossl.random_bytes(NONCE_SIZE)
        with self._lock:
            out = retry_stale(self._store, self, lambda: self._key.encrypt(
                plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)))
        return nonce + out

    def open(self, aad: bytes, sealed: bytes) -> bytes:
        from pkcs11 import Mechanism, PKCS11Error
        from pkcs11.mechanisms import GCMParams
        if len(sealed) < NONCE_SIZE + TAG_SIZE:
            raise KekAuthError("sealed data truncated")
        try:
            with self._lock:
                return self._key.decrypt(sealed[NONCE_SIZE:], mechanism=Mechanism.AES_GCM,
                                         mechanism_param=GCMParams(sealed[:NONCE_SIZE], aad))
        except PKCS11Error as e:  # tokens differ in how they report a failed tag (SoftHSM: CKR_GENERAL_ERROR)
            raise KekAuthError(f"token refused to open it ({type(e).__name__})") from None


@register("pkcs11")
class Pkcs11KeyStore(EncryptedDirectoryStore):
    name = "pkcs11"

    def __init__(self, settings: dict[str, Any]):
        f = Fields(settings, "pkcs11")
        directory = f.directory()
        self.module = f.path("module", required=True)
        self.token_label = f.get("token_label", str, None, lambda v: 0 < len(v.encode()) <= 32,
                                 "must be 1..32 bytes", required=True)
        self._pin_source = f.secret_source("pin_file", "pin_env", required=True)
        self.kek_label = f.get("kek_label", str, DEFAULT_KEK_LABEL, lambda v: 0 < len(v) <= 64, "must be 1..64 chars")
        self._native = frozenset(f.choices("native", NATIVE_NAMES))
        f.finish()
        self.token_lock = threading.Lock()
        self.session = None
        self._last_reconnect = 0.0
        self.generation = 0  # counts reconnects: object handles from an older generation must be found again
        self._login()
        try:
            self._open_store(directory)
        except BaseException:
            self._logout()
            raise

    def _login(self) -> None:
        import pkcs11
        from pkcs11 import TokenFlag
        from pkcs11 import exceptions as E
        if not os.path.isfile(self.module):
            raise KeyStoreError(f"keystore.module: {self.module}: PKCS#11 module not found")
        try:
            lib = self._lib = pkcs11.lib(self.module)
        except Exception as e:  # noqa: BLE001  dlopen or C_Initialize failure
            raise KeyStoreError(f"keystore.module: {self.module}: cannot load the PKCS#11 module ({e})") from None
        try:
            token = lib.get_token(token_label=self.token_label)
        except E.NoSuchToken:
            present = sorted(t.label for t in lib.get_tokens() if t.label)  # an empty label: a free slot
            raise KeyStoreError(f"keystore.token_label: no token labelled {self.token_label!r} "
                                f"(present: {', '.join(map(repr, present)) or 'none'})") from None
        except E.MultipleTokensReturned:
            raise KeyStoreError(f"keystore.token_label: more than one token is labelled {self.token_label!r}") from None
        except E.PKCS11Error as e:
            raise KeyStoreError(f"keystore: token {self.token_label!r} unavailable ({type(e).__name__})") from None
        if token.flags & TokenFlag.USER_PIN_LOCKED:
            raise KeyStoreError(f"keystore: the user PIN of token {self.token_label!r} is locked (too many wrong "
                                "PINs): the security officer must unlock it")
        field = "pin_file" if self._pin_source[0] == "file" else "pin_env"
        pin = read_secret(self._pin_source, "token PIN", field).decode(errors="strict")
        try:
            self.session = token.open(user_pin=pin, rw=True)
        except E.PinIncorrect:
            low = " (the token warns that few tries remain)" if token.flags & TokenFlag.USER_PIN_COUNT_LOW else ""
            raise KeyStoreError(f"keystore.{field}: wrong PIN for token {self.token_label!r}{low}") from None
        except E.PinLocked:
            raise KeyStoreError(f"keystore: the user PIN of token {self.token_label!r} is locked: the security "
                                "officer must unlock it") from None
        except (E.PinExpired, E.UserPinNotInitialized) as e:
            raise KeyStoreError(f"keystore: token {self.token_label!r} has no usable user PIN "
                                f"({type(e).__name__}): initialise it with the security officer PIN") from None
        except E.PKCS11Error as e:
            raise KeyStoreError(f"keystore: cannot log in to token {self.token_label!r} ({type(e).__name__})") from None
        finally:
            del pin

    def reconnect_locked(self) -> bool:
        """The token went away (and maybe came back): reinitialise the library, log in again. Caller holds
        token_lock. At most once a second; True if a fresh session is open now (objects must be found
        again: their handles changed)."""
        now = time.monotonic()
        if now - self._last_reconnect < RECONNECT_INTERVAL_S:
            return False
        self._last_reconnect = now
        self.generation += 1
        self._logout()
        try:
            self._lib.reinitialize()  # C_Finalize + C_Initialize: forget every stale slot, session and handle
            self._login()
        except Exception as e:  # noqa: BLE001  still gone: the caller's operation fails with its own error
            log.warning("PKCS#11 token not reachable", extra={"token": self.token_label, "reason": str(e)})
            return False
        log.info("PKCS#11 token reconnected", extra={"token": self.token_label})
        return True

    def _logout(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                session.close()
            except Exception:  # noqa: BLE001
                pass

    # -- the KEK ------------------------------------------------------------------
    def _find_kek(self):
        with self.token_lock:
            return self._find_kek_locked()

    def _find_kek_locked(self):
        from pkcs11 import KeyType, ObjectClass
        from pkcs11 import exceptions as E
        try:
            return self.session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES,
                                        label=self.kek_label)
        except E.NoSuchKey:
            return None
        except E.MultipleObjectsReturned:
            raise KeyStoreError(f"keystore.kek_label: more than one AES key labelled {self.kek_label!r} in token "
                                f"{self.token_label!r}") from None

    def _create_kek(self, store_id: bytes) -> tuple[Kek, dict[str, Any]]:
        from pkcs11 import Attribute, KeyType
        from pkcs11 import exceptions as E
        key = self._find_kek()  # a second store on the same token shares its KEK
        if key is None:
            try:
                with self.token_lock:
                    key = self.session.generate_key(
                        KeyType.AES, 256, label=self.kek_label, store=True,
                        template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True,
                                  Attribute.ENCRYPT: True, Attribute.DECRYPT: True, Attribute.WRAP: False,
                                  Attribute.UNWRAP: False})
            except E.PKCS11Error as e:
                raise KeyStoreError(f"keystore: token {self.token_label!r} cannot generate the AES-256 KEK "
                                    f"({type(e).__name__})") from None
        section = {"source": "pkcs11", "kek_label": self.kek_label, "mechanism": "CKM_AES_GCM"}
        return TokenKek(key, self.token_lock, self), section

    def _open_kek(self, section: dict[str, Any], store_id: bytes) -> Kek:
        if section.get("source") != "pkcs11":
            raise KeyStoreError(f"keystore: store.json: this store's KEK comes from {section.get('source')!r}; "
                                "open it with the matching backend")
        if section.get("kek_label") != self.kek_label:
            raise KeyStoreError(f"keystore.kek_label: this store's KEK is labelled {section.get('kek_label')!r}, "
                                f"the config says {self.kek_label!r}")
        key = self._find_kek()
        if key is None:
            raise KeyStoreError(f"keystore: the KEK {self.kek_label!r} is not in token {self.token_label!r} "
                                "(was the token re-initialised or replaced?): the stored keys cannot be opened")
        return TokenKek(key, self.token_lock, self)

    def _wrong_kek_hint(self) -> str:
        return f"the KEK {self.kek_label!r} in token {self.token_label!r} is not the one this store was sealed with"

    # -- native keys (generated and used by the PKCS#11 engine, crypto_service/engines/pkcs11.py) ----
    def native_algorithms(self) -> frozenset[Algorithm]:
        return self._native

    def _destroy_native(self, key_id: int, reference: bytes) -> None:
        from pkcs11 import Attribute
        with self.token_lock:
            for obj in list(self.session.get_objects({Attribute.ID: reference})):
                obj.destroy()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "token_label": self.token_label, "kek_label": self.kek_label,
                "native": sorted(a.name for a in self._native)}

    def close(self) -> None:
        super().close()
        if getattr(self, "token_lock", None) is not None:
            with self.token_lock:
                self._logout()
