"""The exceptions of wvds.ossl (pure Python: importable without libcrypto).

Callers catch `OsslError` for "the cryptography refused"; the subclasses say why
when the caller must react differently (a failed GCM tag check is a wire status of
its own; bad input found before any C call is the caller's fault, not OpenSSL's).
"""
from __future__ import annotations

__all__ = ["OsslError", "AuthenticationError", "InvalidInputError"]


class OsslError(Exception):
    """An OpenSSL operation failed. The message ends with OpenSSL's error queue.

    `operation` names what was attempted; `errors` holds the drained queue entries
    (``error:<code>:<library>:<function>:<reason>[ (<detail>)]``), oldest first.
    """

    def __init__(self, operation: str, errors: list[str] | tuple[str, ...] = ()):
        self.operation = operation
        self.errors = tuple(errors)
        super().__init__(f"{operation}: {'; '.join(self.errors)}" if self.errors else operation)


class AuthenticationError(OsslError):
    """AES-GCM decryption: the tag does not authenticate ciphertext and AAD."""


class InvalidInputError(OsslError, ValueError):
    """Rejected in Python before any C call (wrong length, unknown algorithm, wrong key type)."""

    def __init__(self, message: str):
        super().__init__(message)
