"""HKDF-SHA256 (RFC 5869, SP 800-56C) and PBKDF2-HMAC-SHA256 (SP 800-132, for
passphrases only) through EVP_KDF in the FIPS provider.

The FIPS provider calls an HKDF secret shorter than 112 bits unapproved; whether
it then refuses depends on fipsmodule.cnf (``hkdf-key-check``, off by default in
fipsinstall). We refuse such secrets ourselves, whatever the configuration.
"""
from __future__ import annotations

import ctypes

from wvds.ossl import _lib
from wvds.ossl._checks import max_len
from wvds.ossl._params import Params
from wvds.ossl.errors import InvalidInputError

__all__ = ["hkdf_sha256", "pbkdf2_sha256"]

MIN_SECRET = 14  # 112 bits, OSSL_FIPS_MIN_SECURITY_STRENGTH_BITS
MAX_OUTPUT = 255 * 32  # RFC 5869: 255 * HashLen
MAX_INPUT = 1 << 20


def hkdf_sha256(secret: bytes, info: bytes, length: int = 32, salt: bytes = b"") -> bytes:
    """Extract-and-expand. An empty salt means HashLen zero bytes (RFC 5869 2.2)."""
    secret = max_len(secret, "HKDF secret", MAX_INPUT)
    info = max_len(info, "HKDF info", MAX_INPUT)
    salt = max_len(salt, "HKDF salt", MAX_INPUT)
    if len(secret) < MIN_SECRET:
        raise InvalidInputError(f"HKDF secret must be at least {MIN_SECRET} bytes (112 bits), got {len(secret)}")
    if not isinstance(length, int) or not 1 <= length <= MAX_OUTPUT:
        raise InvalidInputError(f"HKDF length must be 1..{MAX_OUTPUT}, got {length!r}")
    lib = _lib.ready()
    kdf = _lib.fetch("EVP_KDF_fetch", "HKDF")
    kctx = _lib.check_ptr(lib.EVP_KDF_CTX_new(kdf), "EVP_KDF_CTX_new")
    out = ctypes.create_string_buffer(length)
    p = Params().utf8(b"digest", "SHA256").octets(b"key", secret).octets(b"info", info)
    if salt:
        p.octets(b"salt", salt)
    try:
        _lib.check(lib.EVP_KDF_derive(kctx, out, length, p.ref), "HKDF-SHA256")
        return out.raw
    finally:
        ctypes.memset(out, 0, length)
        lib.EVP_KDF_CTX_free(kctx)



PBKDF2_MIN_SALT = 16  # SP 800-132 5.1: at least 128 bits
PBKDF2_MIN_ITERATIONS = 1000  # SP 800-132 5.2 minimum; callers use far more
PBKDF2_MAX_ITERATIONS = 1 << 32


def pbkdf2_sha256(password: bytes, salt: bytes, iterations: int, length: int = 32) -> bytes:
    """Key from a human passphrase (SP 800-132). Refuses what the FIPS lower-bound checks would refuse."""
    password = max_len(password, "PBKDF2 password", MAX_INPUT)
    salt = max_len(salt, "PBKDF2 salt", MAX_INPUT)
    if not password:
        raise InvalidInputError("PBKDF2 password must not be empty")
    if len(salt) < PBKDF2_MIN_SALT:
        raise InvalidInputError(f"PBKDF2 salt must be at least {PBKDF2_MIN_SALT} bytes, got {len(salt)}")
    if not isinstance(iterations, int) or not PBKDF2_MIN_ITERATIONS <= iterations <= PBKDF2_MAX_ITERATIONS:
        raise InvalidInputError(f"PBKDF2 iterations must be {PBKDF2_MIN_ITERATIONS}..{PBKDF2_MAX_ITERATIONS}")
    if not isinstance(length, int) or not MIN_SECRET <= length <= 64:
        raise InvalidInputError(f"PBKDF2 length must be {MIN_SECRET}..64, got {length!r}")
    lib = _lib.ready()
    kdf = _lib.fetch("EVP_KDF_fetch", "PBKDF2")
    kctx = _lib.check_ptr(lib.EVP_KDF_CTX_new(kdf), "EVP_KDF_CTX_new")
    out = ctypes.create_string_buffer(length)
    p = (Params().utf8(b"digest", "SHA256").octets(b"pass", password).octets(b"salt", salt)
         .unsigned_be(b"iter", iterations.to_bytes(8, "big")))
    try:
        _lib.check(lib.EVP_KDF_derive(kctx, out, length, p.ref), "PBKDF2-SHA256")
        return out.raw
    finally:
        ctypes.memset(out, 0, length)
        p.wipe()
        lib.EVP_KDF_CTX_free(kctx)
