"""est_service exceptions. Messages never contain passwords or key material."""
from __future__ import annotations


class EstError(Exception):
    """Base class: an enrollment step failed; the current certificate stays in place."""


class ConfigError(EstError):
    """config.json is invalid (all problems, one per line)."""


class TransportError(EstError):
    """No usable HTTP answer: connection refused, TLS failure, timeout, malformed HTTP."""


class HttpStatusError(EstError):
    """The EST server answered with an error status (4xx/5xx, or an unexpected one)."""

    def __init__(self, status: int, operation: str, detail: str = ""):
        super().__init__(f"{operation}: HTTP {status}" + (f": {detail}" if detail else ""))
        self.status, self.operation, self.detail = status, operation, detail


class AuthError(HttpStatusError):
    """401 (credentials refused) or 403 (not authorized): retrying the same way will not help soon."""


class PendingError(EstError):
    """The server accepted the request but has not issued yet (202) and the polling bound was reached."""


class ProtocolError(EstError):
    """The server's answer is malformed (bad base64, not PKCS#7, wrong content type, ...)."""


class ValidationError(EstError):
    """The answer is well-formed but not acceptable: wrong key, wrong subject, no path to the trust anchor."""


class KeyServiceError(EstError):
    """crypto_service refused or failed an operation on the device key."""

    def __init__(self, message: str, key_missing: bool = False):
        super().__init__(message)
        self.key_missing = key_missing


class Cancelled(EstError):
    """The daemon is stopping (SIGTERM) and abandoned the step; nothing was committed."""
