"""TPM 2.0 backend: the KEK is a TPM-sealed object, optionally bound to PCR values.

TPMs have no ML-DSA/ML-KEM, so the key files are the same encrypted files as
the file backend's; what the TPM adds is that the KEK can only be unsealed by
this TPM (its storage hierarchy seed), with the configured auth value, and -
if `pcrs` are set - only while those PCRs hold the values they held when the
store was created (measured boot). ECDSA P-256 keys can also live in the TPM
(`native`): generated, kept and used for signing there by the TPM engine
(crypto_service/engines/tpm.py), through this store's connection (`run`).

All TPM traffic goes through tpm2-tss (ESAPI, through our ctypes binding wvds.tpm2). The unseal runs
in a session salted with the storage primary key and with response encryption,
so the KEK never crosses the TPM bus in clear. The primary key is re-created from
its template at every connection; its name (a hash of its public area) is recorded
in store.json when the store is created and compared before the key salts any
session, so an active attacker on the bus cannot hand us a key of their own to
salt with (as systemd pins its SRK). tpm2-tss computes its session HMACs and
parameter encryption with libcrypto.so.3: the process's own (wvds.ossl, loaded first).
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from wvds import ossl
from wvds.algorithms import cli_names
from wvds.keystore import kek as keks
from wvds.keystore.base import KeyStoreError, register
from wvds.keystore.directory import EncryptedDirectoryStore
from wvds.keystore.kek import Kek
from wvds.keystore.settings import Fields, read_secret
from wvds.protocol.constants import Algorithm
from wvds.tpm2 import esys, wire
from wvds.tpm2.esys import TpmError

esys.lib()  # tpm2-tss missing on the device: ImportError, "the tpm backend is not installed (...)"
log = logging.getLogger("wvds.keystore.tpm")

DEFAULT_TCTI = "device:/dev/tpmrm0"
PCR_BANKS = tuple(wire.PCR_BANKS)
NATIVE_NAMES = cli_names((Algorithm.ECDSA_P256,))  # keystore.native: what the TPM generates and uses
PRIMARY_TEMPLATE = "ecc256:aes128cfb"  # = tpm2_createprimary -C o -G ecc256:aes128cfb (TCG storage key profile)


@register("tpm")
class TpmKeyStore(EncryptedDirectoryStore):
    name = "tpm"

    def __init__(self, settings: dict[str, Any]):
        f = Fields(settings, "tpm")
        directory = f.directory()
        self.tcti = f.get("tcti", str, DEFAULT_TCTI, lambda v: bool(v.split(":", 1)[0]), "must be NAME[:CONF]")
        self.pcrs = sorted(set(f.get("pcrs", list, [], lambda v: all(isinstance(i, int) and not isinstance(i, bool)
                                                                    and 0 <= i <= 23 for i in v),
                                     "must be a list of PCR indices 0..23")))
        self.bank = f.get("pcr_bank", str, "sha256", lambda v: v in PCR_BANKS, f"must be one of {PCR_BANKS}")
        self._auth_source = f.secret_source("auth_file", "auth_env", required=False)
        self._owner_auth_source = f.secret_source("owner_auth_file", "owner_auth_env", required=False)
        self._native = frozenset(f.choices("native", NATIVE_NAMES))
        f.finish()
        self._tpm_lock = threading.Lock()
        self._pinned_primary: str | None = None  # the primary's name recorded in store.json, once known
        self._connect()
        try:
            self._open_store(directory)
        except BaseException:
            self._disconnect()
            raise

    # -- the TPM connection -----------------------------------------------------
    def _connect(self) -> None:
        self.ctx = self.primary = None
        try:
            self.ctx = esys.Esys(self.tcti)
        except TpmError as e:
            raise KeyStoreError(f"keystore.tcti: no TPM reachable through {self.tcti!r} ({e})") from None
        try:
            self._make_primary()
        except BaseException:  # a half-made connection (an unreadable owner auth file, ...) is not kept
            self._disconnect()
            raise

    def _make_primary(self) -> None:
        if self._owner_auth_source:
            field = "owner_auth_file" if self._owner_auth_source[0] == "file" else "owner_auth_env"
            owner_auth = read_secret(self._owner_auth_source, "owner hierarchy auth", field)
            if len(owner_auth) > wire.MAX_AUTH:
                raise KeyStoreError(f"keystore.{field}: the owner hierarchy auth value may be at most "
                                    f"{wire.MAX_AUTH} bytes")
            self.ctx.set_auth(wire.TR_RH_OWNER, owner_auth)
        curve, symmetric = PRIMARY_TEMPLATE.split(":")
        try:
            self.primary = self.ctx.create_primary(wire.ecc_template(curve, wire.STORAGE_PRIMARY, symmetric))
        except TpmError as e:
            raise KeyStoreError(f"keystore: the TPM refused to create the storage primary key under the owner "
                                f"hierarchy: {_explain(e, 'owner hierarchy auth (owner_auth_file/owner_auth_env)')}"
                                ) from None
        if self._pinned_primary is not None:
            self._check_primary(self._pinned_primary)

    def _primary_name(self) -> str:
        return self.ctx.name(self.primary).hex()

    def _check_primary(self, recorded: str) -> None:
        """The primary we got must be the one the store was created with, before it salts a session."""
        name = self._primary_name()
        if name != recorded:
            self._disconnect()
            raise KeyStoreError("keystore: the TPM's storage primary key is not the one this store was created "
                                f"with (name {name[:16]}..., store.json records {recorded[:16]}...): another TPM, "
                                "a cleared owner hierarchy, or someone on the TPM bus; refusing to unseal")
        self._pinned_primary = recorded

    def call_locked(self, fn):
        """fn() with _tpm_lock held by the caller, reconnecting once if the TPM link broke.

        After the TPM (or swtpm / the resource manager) went away and came back, the ESAPI context
        is dead and the storage primary key is gone from the TPM: connect again (the primary is
        re-created from the same template, so it is the same key) and retry once. A TPM that is
        still unreachable raises KeyStoreError; a TPM error raises TpmError."""
        if self.ctx is None or self.primary is None:
            self._connect()
        try:
            return fn()
        except TpmError as e:
            if not _link_broken(e):
                raise  # the command's own error (a bad parameter, a policy): the same again on a new link
            log.warning("TPM link lost; reconnecting once", extra={"tcti": self.tcti, "reason": str(e)})
            self._disconnect()
        self._connect()
        return fn()

    def _disconnect(self) -> None:
        ctx, self.ctx = getattr(self, "ctx", None), None
        if ctx is not None:
            try:
                if self.primary is not None:
                    ctx.flush(self.primary)
            except Exception:  # noqa: BLE001  closing anyway
                pass
            try:
                ctx.close()
            except Exception:  # noqa: BLE001  a broken link may fail to close; it is dropped all the same
                pass
        self.primary = None

    def _session(self, policy: bool, encrypt: bool, decrypt: bool = False):
        """A session salted with the primary key (AES-128-CFB, SHA-256), with parameter encryption as asked."""
        s = self.ctx.start_auth_session(self.primary, wire.SE_POLICY if policy else wire.SE_HMAC, "aes128cfb")
        attrs = wire.SESSION_CONTINUE
        attrs |= wire.SESSION_ENCRYPT if encrypt else 0
        attrs |= wire.SESSION_DECRYPT if decrypt else 0
        self.ctx.set_session_attributes(s, attrs)
        return s

    def _pcr_policy(self, session: int, with_auth: bool) -> None:
        if self.pcrs:
            self.ctx.policy_pcr(session, wire.pcr_selection(self.bank, self.pcrs))
        if with_auth:
            self.ctx.policy_auth_value(session)

    def _policy_digest(self, with_auth: bool) -> bytes:
        s = self.ctx.start_auth_session(wire.TR_NONE, wire.SE_TRIAL, "null")
        try:
            self._pcr_policy(s, with_auth)
            return self.ctx.policy_digest(s)
        finally:
            self.ctx.flush(s)

    # -- the sealed KEK -----------------------------------------------------------
    def _auth(self) -> bytes:
        if not self._auth_source:
            return b""
        field = "auth_file" if self._auth_source[0] == "file" else "auth_env"
        auth = read_secret(self._auth_source, "TPM auth value", field)
        if len(auth) > 32:
            raise KeyStoreError(f"keystore.{field}: the TPM auth value may be at most 32 bytes")
        return auth

    def _create_kek(self, store_id: bytes) -> tuple[Kek, dict[str, Any]]:
        auth = self._auth()
        attrs = wire.FIXEDTPM | wire.FIXEDPARENT
        policy = b""
        with self._tpm_lock:
            if self.pcrs:
                policy = self._policy_digest(with_auth=bool(auth))
            else:
                attrs |= wire.USERWITHAUTH
        template = wire.sealed_data_template(attrs, policy)
        secret = ossl.random_bytes(keks.KEY_SIZE)  # sealed data comes from the FIPS DRBG
        sensitive = bytearray(wire.sensitive_create(auth, secret))
        with self._tpm_lock:
            s = self._session(policy=False, encrypt=False, decrypt=True)  # inSensitive travels encrypted
            try:
                private, public = self.ctx.create(self.primary, bytes(sensitive), template, session=s)
            except TpmError as e:
                raise KeyStoreError(f"keystore: the TPM could not seal the KEK: {_explain(e)}") from None
            finally:
                sensitive[:] = bytes(len(sensitive))
                self.ctx.flush(s)
            self._pinned_primary = self._primary_name()
        section = {"source": "tpm", "primary": f"owner/{PRIMARY_TEMPLATE}", "primary_name": self._pinned_primary,
                   "public": public.hex(),
                   "private": private.hex(), "pcrs": self.pcrs, "pcr_bank": self.bank, "auth": bool(auth)}
        return keks.from_secret(secret, store_id, "tpm-sealed"), section

    def _open_kek(self, section: dict[str, Any], store_id: bytes) -> Kek:
        if section.get("source") != "tpm":
            raise KeyStoreError(f"keystore: store.json: this store's KEK comes from {section.get('source')!r}; "
                                "open it with the matching backend")
        if section.get("pcrs") != self.pcrs or section.get("pcr_bank") != self.bank:
            raise KeyStoreError(f"keystore.pcrs: the KEK of this store is sealed to {section.get('pcr_bank')} PCRs "
                                f"{section.get('pcrs')}, the config says {self.bank} {self.pcrs}: a different "
                                "binding needs a new store (docs/keystore.md, re-provisioning)")
        if section.get("auth") and not self._auth_source:
            raise KeyStoreError("keystore.auth_file: the KEK of this store is sealed with an auth value: "
                                "configure auth_file or auth_env")
        # Refused before the TPM sees it: an auth value the object does not have counts towards the TPM's
        # dictionary-attack lockout, which a restart loop would reach (and then lock out other users' keys too).
        if not section.get("auth") and self._auth_source:
            raise KeyStoreError("keystore.auth_file: the KEK of this store is sealed without an auth value: "
                                "remove auth_file/auth_env (or re-provision the store with one)")
        auth = self._auth()
        recorded = section.get("primary_name")
        with self._tpm_lock:
            if isinstance(recorded, str):
                self._check_primary(recorded)
            else:  # a store made before the name was recorded: nothing to compare with (docs/keystore.md)
                log.warning("store.json records no TPM primary key name: the primary cannot be verified; "
                            "re-provision the store to pin it", extra={"tcti": self.tcti})
        try:
            public, private = bytes.fromhex(section["public"]), bytes.fromhex(section["private"])
        except Exception:  # noqa: BLE001  any parse failure means the same thing
            raise KeyStoreError("keystore: store.json: the sealed KEK blobs are malformed") from None
        with self._tpm_lock:
            try:
                handle = self.ctx.load(self.primary, private, public)
            except wire.WireError:
                raise KeyStoreError("keystore: store.json: the sealed KEK blobs are malformed") from None
            except TpmError as e:
                raise KeyStoreError("keystore: the TPM cannot load the sealed KEK - this is not the TPM the store "
                                    f"was created on, or its owner hierarchy was cleared ({_explain(e)})") from None
            try:
                self.ctx.set_auth(handle, auth)
                s = self._session(policy=bool(self.pcrs), encrypt=True)
                try:
                    if self.pcrs:
                        self._pcr_policy(s, with_auth=bool(section.get("auth")))
                    secret = self.ctx.unseal(handle, session=s)
                except TpmError as e:
                    raise KeyStoreError(f"keystore: the TPM refused to unseal the KEK: {_explain(e, 'auth value')}"
                                        ) from None
                finally:
                    self.ctx.flush(s)
            finally:
                self.ctx.flush(handle)
        try:
            return keks.from_secret(bytes(secret), store_id, "tpm-sealed")
        finally:
            secret[:] = bytes(len(secret))

    def _wrong_kek_hint(self) -> str:
        return "the KEK unsealed by the TPM does not match this store"

    # -- native keys (generated and used by the TPM engine, crypto_service/engines/tpm.py) ----------
    def native_algorithms(self) -> frozenset[Algorithm]:
        return self._native

    def run(self, fn):
        """fn() under the TPM lock, reconnecting once if the TPM link broke (call_locked): the TPM engine's
        way to the TPM this store is connected to."""
        with self._tpm_lock:
            return self.call_locked(fn)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "tcti": self.tcti, "pcrs": self.pcrs, "pcr_bank": self.bank,
                "native": sorted(a.name for a in self._native)}

    def close(self) -> None:
        super().close()
        if getattr(self, "_tpm_lock", None) is not None:
            with self._tpm_lock:
                self._disconnect()


def _link_broken(e: TpmError) -> bool:
    """The link, not the command, failed: an error of the TSS layers (TCTI, ESAPI: the socket or device went
    away), or a TPM that was reset (INITIALIZE) or no longer holds our objects (HANDLE, REFERENCE_H0..H6)."""
    return (e.rc >> 16 != 0 or e.error in (wire.RC_INITIALIZE, wire.RC_HANDLE)
            or wire.RC_REFERENCE_H0 <= e.rc <= wire.RC_REFERENCE_H0 + 6)


def _explain(e: TpmError, auth_what: str = "auth value") -> str:
    """A TPM response code in operator's words (the raw code stays in the message for support)."""
    code = e.error
    if code in (wire.RC_AUTH_FAIL, wire.RC_BAD_AUTH):
        return f"wrong {auth_what} (TPM rc 0x{e.rc:x})"
    if code == wire.RC_POLICY_FAIL:
        return f"PCR mismatch: the PCRs do not hold the values the KEK was sealed to (TPM rc 0x{e.rc:x})"
    if code == wire.RC_LOCKOUT:
        return f"the TPM is in dictionary-attack lockout; wait or reset it with the lockout auth (TPM rc 0x{e.rc:x})"
    if code == wire.RC_INTEGRITY:
        return f"integrity check failed (TPM rc 0x{e.rc:x})"
    return str(e)
