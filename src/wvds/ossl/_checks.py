"""Input checks done in Python before any C call, so malformed input never reaches OpenSSL."""
from __future__ import annotations

from wvds.ossl.errors import InvalidInputError

INT_MAX = 2**31 - 1  # EVP_EncryptUpdate and friends take int lengths


def as_bytes(value, name: str) -> bytes:
    """bytes from any bytes-like value (bytearray, memoryview are copied)."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidInputError(f"{name} must be bytes-like, not {type(value).__name__}")


def exact_len(value, name: str, size: int) -> bytes:
    value = as_bytes(value, name)
    if len(value) != size:
        raise InvalidInputError(f"{name} must be {size} bytes, got {len(value)}")
    return value


def max_len(value, name: str, limit: int) -> bytes:
    value = as_bytes(value, name)
    if len(value) > limit:
        raise InvalidInputError(f"{name} must be at most {limit} bytes, got {len(value)}")
    return value
