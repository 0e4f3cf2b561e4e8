"""ML-KEM (FIPS 203) encapsulation and decapsulation in the FIPS provider.

Decapsulation of a well-formed but wrong ciphertext does not fail: FIPS 203's
implicit rejection returns a pseudo-random secret that simply differs from the
sender's. Only the ciphertext length is checked here (before any C call).
"""
from __future__ import annotations

import ctypes
from ctypes import byref, c_size_t

from wvds.ossl import _lib
from wvds.ossl._checks import exact_len
from wvds.ossl.keys import PKey, borrow, require

__all__ = ["mlkem_encapsulate", "mlkem_decapsulate", "SHARED_SECRET_SIZE"]

SHARED_SECRET_SIZE = 32


def mlkem_encapsulate(key: PKey) -> tuple[bytes, bytes]:
    """Returns (ciphertext, 32-byte shared secret) for the key's public part."""
    s = require(key, "ML-KEM", False, "ML-KEM encapsulate")
    lib = _lib.ready()
    ct = ctypes.create_string_buffer(s.ciphertext_size)
    secret = ctypes.create_string_buffer(SHARED_SECRET_SIZE)
    ctlen, sslen = c_size_t(s.ciphertext_size), c_size_t(SHARED_SECRET_SIZE)
    try:
        with borrow(key) as pkey:
            ctx = _lib.check_ptr(lib.EVP_PKEY_CTX_new_from_pkey(None, pkey, None), "ML-KEM encapsulate")
            try:
                _lib.check(lib.EVP_PKEY_encapsulate_init(ctx, None), "ML-KEM encapsulate init")
                _lib.check(lib.EVP_PKEY_encapsulate(ctx, ct, byref(ctlen), secret, byref(sslen)),
                           f"{s.name} encapsulate")
            finally:
                lib.EVP_PKEY_CTX_free(ctx)
        if (ctlen.value, sslen.value) != (s.ciphertext_size, SHARED_SECRET_SIZE):
            raise _lib.error(f"{s.name} encapsulate: unexpected sizes {ctlen.value}/{sslen.value}")
        return ct.raw, secret.raw
    finally:
        ctypes.memset(secret, 0, SHARED_SECRET_SIZE)


def mlkem_decapsulate(key: PKey, ciphertext: bytes) -> bytes:
    """The 32-byte shared secret for ciphertext (implicit rejection for a wrong one)."""
    s = require(key, "ML-KEM", True, "ML-KEM decapsulate")
    ciphertext = exact_len(ciphertext, f"{s.name} ciphertext", s.ciphertext_size)
    lib = _lib.ready()
    secret = ctypes.create_string_buffer(SHARED_SECRET_SIZE)
    sslen = c_size_t(SHARED_SECRET_SIZE)
    try:
        with borrow(key) as pkey:
            ctx = _lib.check_ptr(lib.EVP_PKEY_CTX_new_from_pkey(None, pkey, None), "ML-KEM decapsulate")
            try:
                _lib.check(lib.EVP_PKEY_decapsulate_init(ctx, None), "ML-KEM decapsulate init")
                _lib.check(lib.EVP_PKEY_decapsulate(ctx, secret, byref(sslen), ciphertext, len(ciphertext)),
                           f"{s.name} decapsulate")
            finally:
                lib.EVP_PKEY_CTX_free(ctx)
        if sslen.value != SHARED_SECRET_SIZE:
            raise _lib.error(f"{s.name} decapsulate: unexpected secret size {sslen.value}")
        return secret.raw
    finally:
        ctypes.memset(secret, 0, SHARED_SECRET_SIZE)
