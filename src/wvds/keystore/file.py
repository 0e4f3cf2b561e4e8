"""The embedded default: key files encrypted under a KEK derived from a device secret.

The device secret is either a file of at least 32 random bytes (KEK by
HKDF-SHA256) or a passphrase from an environment variable or a credential file
(KEK by PBKDF2-HMAC-SHA256 with a per-store salt). The secret itself is never
stored in the key store; losing it loses the keys.
"""
from __future__ import annotations

from typing import Any

from wvds import ossl
from wvds.keystore import kek as keks
from wvds.keystore.base import KeyStoreError, register
from wvds.keystore.directory import EncryptedDirectoryStore
from wvds.keystore.kek import Kek
from wvds.keystore.settings import Fields, read_secret

DEFAULT_SECRET_FILE = "/etc/opt/wvds/keystore.secret"
MIN_SECRET_BYTES = 32
MIN_PASSPHRASE = 12


@register("file")
class FileKeyStore(EncryptedDirectoryStore):
    name = "file"

    def __init__(self, settings: dict[str, Any]):
        f = Fields(settings, "file")
        directory = f.directory()
        self._secret_source = f.path("secret_file")
        passphrase = f.secret_source("passphrase_file", "passphrase_env", required=False)
        self._iterations = f.get("pbkdf2_iterations", int, keks.PBKDF2_DEFAULT_ITERATIONS,
                                 lambda v: 10_000 <= v <= 100_000_000, "must be 10000..100000000")
        if self._secret_source and passphrase:
            f.error("secret_file", "give either secret_file or a passphrase (passphrase_file/passphrase_env), not both")
        elif not self._secret_source and not passphrase and not f.errors:
            if any(k in settings for k in ("secret_file", "passphrase_file", "passphrase_env")):
                f.error("secret_file", "the file backend needs a device secret: secret_file, passphrase_file or "
                                       "passphrase_env")
            self._secret_source = DEFAULT_SECRET_FILE
        f.finish()
        self._passphrase_source = passphrase
        self._open_store(directory)

    def _device_secret(self) -> bytes:
        try:
            secret = read_secret(("file", self._secret_source), "device secret", "secret_file", strip_newline=False)
        except KeyStoreError as e:
            if "not found" in str(e):
                raise KeyStoreError(f"{e}; create it once per device with: head -c 32 /dev/urandom > "
                                    f"{self._secret_source} && chmod 0600 {self._secret_source}") from None
            raise
        if len(secret) < MIN_SECRET_BYTES:
            raise KeyStoreError(f"keystore.secret_file: {self._secret_source}: the device secret must be at least "
                                f"{MIN_SECRET_BYTES} random bytes, it has {len(secret)}")
        return secret

    def _passphrase(self) -> bytes:
        field = "passphrase_file" if self._passphrase_source[0] == "file" else "passphrase_env"
        pw = read_secret(self._passphrase_source, "passphrase", field)
        if len(pw) < MIN_PASSPHRASE:
            raise KeyStoreError(f"keystore.{field}: the passphrase must be at least {MIN_PASSPHRASE} characters")
        return pw

    def _create_kek(self, store_id: bytes) -> tuple[Kek, dict[str, Any]]:
        if self._secret_source:
            return keks.from_secret(self._device_secret(), store_id, "secret_file"), {"source": "secret_file"}
        salt = ossl.random_bytes(keks.PBKDF2_SALT_SIZE)
        section = {"source": "passphrase", "kdf": "PBKDF2-HMAC-SHA256", "salt": salt.hex(),
                   "iterations": self._iterations}
        return keks.from_passphrase(self._passphrase(), salt, self._iterations), section

    def _open_kek(self, section: dict[str, Any], store_id: bytes) -> Kek:
        source = section.get("source")
        if source == "secret_file":
            if not self._secret_source:
                raise KeyStoreError("keystore: this store was created with a secret_file; the config names a "
                                    "passphrase instead")
            return keks.from_secret(self._device_secret(), store_id, "secret_file")
        if source == "passphrase":
            if not self._passphrase_source:
                raise KeyStoreError("keystore: this store was created with a passphrase; the config names a "
                                    "secret_file instead")
            try:
                salt, iterations = bytes.fromhex(section["salt"]), int(section["iterations"])
            except (KeyError, TypeError, ValueError):
                raise KeyStoreError("keystore: store.json: malformed passphrase KDF parameters") from None
            return keks.from_passphrase(self._passphrase(), salt, iterations)
        raise KeyStoreError(f"keystore: store.json: this store's KEK comes from {source!r}; "
                            "open it with the matching backend")

    def _wrong_kek_hint(self) -> str:
        return ("wrong device secret" if self._secret_source else "wrong passphrase")
