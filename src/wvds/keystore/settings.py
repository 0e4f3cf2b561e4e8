"""Typed reading of the `keystore` section of config.json, and of the secrets it names.

Every problem is collected with its field path ("keystore.pin_env: ...") and
reported at once, like the rest of the configuration (wvds.config_fields: a null
field is an absent one). Secrets (device secret, passphrase, PIN, TPM auth) are
never written in config.json itself: the config names a file or an environment
variable that holds them.
"""
from __future__ import annotations

import os
from typing import Any

from wvds import config_fields
from wvds.keystore.base import KeyStoreError
from wvds.private_file import PrivateFileError, read_private

DEFAULT_DIRECTORY = "/var/lib/wvds/keystore"


class Fields(config_fields.Fields):
    """Reads fields of one backend's settings; `finish()` raises KeyStoreError listing every problem."""

    def __init__(self, settings: dict[str, Any], backend: str):
        super().__init__(settings, "keystore", [])
        self.settings, self.backend = self.obj, backend
        self.missing = f"required for the {backend} backend"
        self.seen.add("backend")

    def error(self, key: str, message: str) -> None:
        self.err(key, message)

    def path(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        return self.get(key, str, default, config_fields.absolute_path, "must be an absolute path", required)

    def directory(self) -> str:
        return self.path("directory", DEFAULT_DIRECTORY)

    def secret_source(self, file_key: str, env_key: str, required: bool) -> tuple[str, str] | None:
        """("file", path) or ("env", NAME) from a pair of mutually exclusive fields."""
        path = self.path(file_key)
        env = self.get(env_key, str, None, lambda v: v != "" and "=" not in v, "must be an environment variable name")
        if path and env:
            self.error(file_key, f"give either {file_key} or {env_key}, not both")
            return None
        if path:
            return ("file", path)
        if env:
            return ("env", env)
        if required and not (self.has(file_key) or self.has(env_key)):  # else a wrong one was reported
            self.error(file_key, f"required for the {self.backend} backend (or {env_key})")
        return None

    def choices(self, key: str, allowed: dict[str, Any]) -> list[Any]:
        names = self.get(key, list, [])
        out = []
        for n in names:
            if n not in allowed:
                self.error(key, f"unknown entry {config_fields.shown(n)}; allowed: {', '.join(sorted(allowed))}")
            else:
                out.append(allowed[n])
        return out

    def finish(self) -> None:
        self.unknown(f"unknown field for the {self.backend} backend (misspelled?)")
        if self.errors:
            raise KeyStoreError("\n".join(self.errors))


def read_secret(source: tuple[str, str], what: str, field: str, strip_newline: bool = True) -> bytes:
    """The bytes of a secret from ("file", path) or ("env", NAME); KeyStoreError naming the field if unusable.

    A secret file must be a regular file owned by the service's user or root that
    neither group nor others can read (it is the key to every stored key); it is
    read without following a symlink at its last component (wvds.private_file).
    """
    kind, where = source
    if kind == "env":
        value = os.environ.get(where)
        if value is None or value == "":
            raise KeyStoreError(f"keystore.{field}: environment variable {where} with the {what} is not set")
        return value.encode()
    try:
        data = read_private(where, what)
    except PrivateFileError as e:
        raise KeyStoreError(f"keystore.{field}: {e}") from None
    if strip_newline:
        data = data.rstrip(b"\r\n")
    if not data:
        raise KeyStoreError(f"keystore.{field}: {where}: the {what} file is empty")
    return data
