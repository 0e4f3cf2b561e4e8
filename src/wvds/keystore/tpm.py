"""TPM 2.0 backend: the KEK is a TPM-sealed object, optionally bound to PCR values.

TPMs have no ML-DSA/ML-KEM, so the key files are the same encrypted files as
the file backend's; what the TPM adds is that the KEK can only be unsealed by
this TPM (its storage hierarchy seed), with the configured auth value, and -
if `pcrs` are set - only while those PCRs hold the values they held when the
store was created (measured boot). ECDSA P-256 keys can also live in the TPM
(`native`): generated, kept and used for signing there by the TPM engine
(crypto_service/engines/tpm.py), through this store's connection (`run`).

All TPM traffic goes through tpm2-tss (ESAPI via tpm2-pytss). The unseal runs
in a session salted with the storage primary key and with response encryption,
so the KEK never crosses the TPM bus in clear. The primary key is re-created from
its template at every connection; its name (a hash of its public area) is recorded
in store.json when the store is created and compared before the key salts any
session, so an active attacker on the bus cannot hand us a key of their own to
salt with (as systemd pins its SRK). Import order matters:
tpm2-pytss pulls in pyca/cryptography, whose bundled OpenSSL would read
OPENSSL_CONF; wvds.ossl must be loaded first (the service does that).
"""
from __future__ import annotations

import logging
import os
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

log = logging.getLogger("wvds.keystore.tpm")

os.environ.setdefault("TSS2_LOG", "all+NONE")  # tpm2-tss would print its own warnings on stderr: we report instead

DEFAULT_TCTI = "device:/dev/tpmrm0"
PCR_BANKS = ("sha256", "sha384")
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
        from tpm2_pytss import ESAPI, TCTILdr, TSS2_Exception
        from tpm2_pytss.constants import ESYS_TR, TPMA_OBJECT
        from tpm2_pytss.types import TPM2B_PUBLIC
        name, _, conf = self.tcti.partition(":")
        self.ctx = self.primary = None
        try:
            self.ctx = ESAPI(TCTILdr(name, conf or None))
        except TSS2_Exception as e:
            raise KeyStoreError(f"keystore.tcti: no TPM reachable through {self.tcti!r} ({e})") from None
        if self._owner_auth_source:
            field = "owner_auth_file" if self._owner_auth_source[0] == "file" else "owner_auth_env"
            self.ctx.tr_set_auth(ESYS_TR.OWNER, read_secret(self._owner_auth_source, "owner hierarchy auth", field))
        template = TPM2B_PUBLIC.parse(PRIMARY_TEMPLATE,
                                      objectAttributes=TPMA_OBJECT.DEFAULT_TPM2_TOOLS_CREATEPRIMARY_ATTRS)
        try:
            self.primary = self.ctx.create_primary(None, template)[0]
        except TSS2_Exception as e:
            self._disconnect()
            raise KeyStoreError(f"keystore: the TPM refused to create the storage primary key under the owner "
                                f"hierarchy: {_explain(e, 'owner hierarchy auth (owner_auth_file/owner_auth_env)')}"
                                ) from None
        if self._pinned_primary is not None:
            self._check_primary(self._pinned_primary)

    def _primary_name(self) -> str:
        return bytes(self.ctx.tr_get_name(self.primary)).hex()

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
        still unreachable raises KeyStoreError; a TPM error raises TSS2_Exception."""
        from tpm2_pytss import TSS2_Exception
        if self.ctx is None:
            self._connect()
        try:
            return fn()
        except TSS2_Exception as e:
            log.warning("TPM command failed; reconnecting once", extra={"tcti": self.tcti, "reason": str(e)})
            self._disconnect()
        self._connect()
        return fn()

    def _disconnect(self) -> None:
        ctx, self.ctx = getattr(self, "ctx", None), None
        if ctx is not None:
            try:
                if self.primary is not None:
                    ctx.flush_context(self.primary)
            except Exception:  # noqa: BLE001  closing anyway
                pass
            try:
                ctx.close()
            except Exception:  # noqa: BLE001  a broken link may fail to close; it is dropped all the same
                pass
        self.primary = None

    def _session(self, policy: bool, encrypt: bool, decrypt: bool = False):
        """A session salted with the primary key, with parameter encryption as asked."""
        from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_SE, TPMA_SESSION
        s = self.ctx.start_auth_session(self.primary, ESYS_TR.NONE, TPM2_SE.POLICY if policy else TPM2_SE.HMAC,
                                        _aes128cfb(), TPM2_ALG.SHA256)
        attrs = TPMA_SESSION.CONTINUESESSION
        attrs |= TPMA_SESSION.ENCRYPT if encrypt else 0
        attrs |= TPMA_SESSION.DECRYPT if decrypt else 0
        self.ctx.trsess_set_attributes(s, attrs)
        return s

    def _pcr_policy(self, session, with_auth: bool) -> None:
        from tpm2_pytss.types import TPM2B_DIGEST, TPML_PCR_SELECTION
        if self.pcrs:
            self.ctx.policy_pcr(session, TPM2B_DIGEST(),
                                TPML_PCR_SELECTION.parse(f"{self.bank}:{','.join(map(str, self.pcrs))}"))
        if with_auth:
            self.ctx.policy_auth_value(session)

    def _policy_digest(self, with_auth: bool) -> bytes:
        from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_SE
        from tpm2_pytss.types import TPMT_SYM_DEF
        s = self.ctx.start_auth_session(ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.TRIAL,
                                        TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL), TPM2_ALG.SHA256)
        try:
            self._pcr_policy(s, with_auth)
            return bytes(self.ctx.policy_get_digest(s))
        finally:
            self.ctx.flush_context(s)

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
        from tpm2_pytss import TSS2_Exception
        from tpm2_pytss.constants import TPM2_ALG, TPMA_OBJECT
        from tpm2_pytss.types import (
            TPM2B_AUTH,
            TPM2B_PUBLIC,
            TPM2B_SENSITIVE_CREATE,
            TPM2B_SENSITIVE_DATA,
            TPMS_SENSITIVE_CREATE,
            TPMT_PUBLIC,
        )
        auth = self._auth()
        attrs = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT
        policy = b""
        if self.pcrs:
            policy = self._policy_digest(with_auth=bool(auth))
        else:
            attrs |= TPMA_OBJECT.USERWITHAUTH
        template = TPM2B_PUBLIC(TPMT_PUBLIC(type=TPM2_ALG.KEYEDHASH, nameAlg=TPM2_ALG.SHA256, objectAttributes=attrs,
                                            authPolicy=policy))
        template.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG.NULL
        secret = ossl.random_bytes(keks.KEY_SIZE)  # sealed data comes from the FIPS DRBG
        sensitive = TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(userAuth=TPM2B_AUTH(auth),
                                                                 data=TPM2B_SENSITIVE_DATA(secret)))
        with self._tpm_lock:
            s = self._session(policy=False, encrypt=False, decrypt=True)  # inSensitive travels encrypted
            try:
                private, public = self.ctx.create(self.primary, sensitive, template, session1=s)[:2]
            except TSS2_Exception as e:
                raise KeyStoreError(f"keystore: the TPM could not seal the KEK: {_explain(e)}") from None
            finally:
                self.ctx.flush_context(s)
        self._pinned_primary = self._primary_name()
        section = {"source": "tpm", "primary": f"owner/{PRIMARY_TEMPLATE}", "primary_name": self._pinned_primary,
                   "public": public.marshal().hex(),
                   "private": private.marshal().hex(), "pcrs": self.pcrs, "pcr_bank": self.bank, "auth": bool(auth)}
        return keks.from_secret(secret, store_id, "tpm-sealed"), section

    def _open_kek(self, section: dict[str, Any], store_id: bytes) -> Kek:
        from tpm2_pytss import TSS2_Exception
        from tpm2_pytss.types import TPM2B_PRIVATE, TPM2B_PUBLIC
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
        auth = self._auth()
        recorded = section.get("primary_name")
        with self._tpm_lock:
            if isinstance(recorded, str):
                self._check_primary(recorded)
            else:  # a store made before the name was recorded: nothing to compare with (docs/keystore.md)
                log.warning("store.json records no TPM primary key name: the primary cannot be verified; "
                            "re-provision the store to pin it", extra={"tcti": self.tcti})
        try:
            public = TPM2B_PUBLIC.unmarshal(bytes.fromhex(section["public"]))[0]
            private = TPM2B_PRIVATE.unmarshal(bytes.fromhex(section["private"]))[0]
        except Exception:  # noqa: BLE001  any parse failure means the same thing
            raise KeyStoreError("keystore: store.json: the sealed KEK blobs are malformed") from None
        with self._tpm_lock:
            try:
                handle = self.ctx.load(self.primary, private, public)
            except TSS2_Exception as e:
                raise KeyStoreError("keystore: the TPM cannot load the sealed KEK - this is not the TPM the store "
                                    f"was created on, or its owner hierarchy was cleared ({_explain(e)})") from None
            try:
                self.ctx.tr_set_auth(handle, auth)
                s = self._session(policy=bool(self.pcrs), encrypt=True)
                try:
                    if self.pcrs:
                        self._pcr_policy(s, with_auth=bool(section.get("auth")))
                    secret = bytes(self.ctx.unseal(handle, session1=s))
                except TSS2_Exception as e:
                    raise KeyStoreError(f"keystore: the TPM refused to unseal the KEK: {_explain(e, 'auth value')}"
                                        ) from None
                finally:
                    self.ctx.flush_context(s)
            finally:
                self.ctx.flush_context(handle)
        try:
            return keks.from_secret(secret, store_id, "tpm-sealed")
        finally:
            del secret

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


def _aes128cfb():
    from tpm2_pytss.constants import TPM2_ALG
    from tpm2_pytss.types import TPMT_SYM_DEF, TPMU_SYM_KEY_BITS, TPMU_SYM_MODE
    return TPMT_SYM_DEF(algorithm=TPM2_ALG.AES, keyBits=TPMU_SYM_KEY_BITS(aes=128),
                        mode=TPMU_SYM_MODE(aes=TPM2_ALG.CFB))


def _explain(e, auth_what: str = "auth value") -> str:
    """A TPM response code in operator's words (the raw code stays in the message for support)."""
    from tpm2_pytss.constants import TPM2_RC
    code = getattr(e, "error", None)
    if code in (TPM2_RC.AUTH_FAIL, TPM2_RC.BAD_AUTH):
        return f"wrong {auth_what} (TPM rc 0x{e.rc:x})"
    if code == TPM2_RC.POLICY_FAIL:
        return f"PCR mismatch: the PCRs do not hold the values the KEK was sealed to (TPM rc 0x{e.rc:x})"
    if code == TPM2_RC.LOCKOUT:
        return f"the TPM is in dictionary-attack lockout; wait or reset it with the lockout auth (TPM rc 0x{e.rc:x})"
    if code == TPM2_RC.INTEGRITY:
        return f"integrity check failed (TPM rc 0x{e.rc:x})"
    return str(e)
