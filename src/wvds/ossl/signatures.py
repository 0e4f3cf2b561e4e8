"""Signatures: pure ML-DSA (FIPS 204), pure SLH-DSA (FIPS 205) and ECDSA (FIPS 186-5, DER-encoded), from the
FIPS provider.

ML-DSA signs the message itself ("pure" ML-DSA, not HashML-DSA) through
EVP_PKEY_sign_message_init with an explicitly fetched ML-DSA-xx signature
algorithm; the optional context string (at most 255 bytes) is the
"context-string" parameter. Signing is hedged (fresh randomness from the FIPS
DRBG mixed into every signature), OpenSSL's default.

Verification returns False for a signature that does not verify *or* is
malformed (wrong length, bad DER); it raises only for misuse (wrong key type)
or a failure unrelated to the signature.
"""
from __future__ import annotations

import ctypes
from ctypes import byref, c_size_t

from wvds.ossl import _lib
from wvds.ossl._checks import as_bytes, max_len
from wvds.ossl._params import Params
from wvds.ossl.errors import InvalidInputError
from wvds.ossl.keys import PKey, borrow, require

__all__ = ["mldsa_sign", "mldsa_verify", "slhdsa_sign", "slhdsa_verify", "ecdsa_sign", "ecdsa_verify", "DIGESTS",
           "MAX_CONTEXT"]

MAX_CONTEXT = 255
# accepted digest names -> (OpenSSL name, digest size)
DIGESTS = {
    **{n: ("SHA2-256", 32) for n in ("SHA256", "SHA-256", "SHA2-256")},
    **{n: ("SHA2-384", 48) for n in ("SHA384", "SHA-384", "SHA2-384")},
    **{n: ("SHA2-512", 64) for n in ("SHA512", "SHA-512", "SHA2-512")},
}


def mldsa_sign(key: PKey, message: bytes, context: bytes = b"") -> bytes:
    return _pure_sign(key, "ML-DSA", message, context)


def mldsa_verify(key: PKey, message: bytes, signature: bytes, context: bytes = b"") -> bool:
    return _pure_verify(key, "ML-DSA", message, signature, context)


def slhdsa_sign(key: PKey, message: bytes, context: bytes = b"") -> bytes:
    """Pure SLH-DSA (FIPS 205), hedged (OpenSSL's default: fresh opt_rand from the DRBG)."""
    return _pure_sign(key, "SLH-DSA", message, context)


def slhdsa_verify(key: PKey, message: bytes, signature: bytes, context: bytes = b"") -> bool:
    return _pure_verify(key, "SLH-DSA", message, signature, context)


def signature_algorithm(key: PKey) -> int:
    """The EVP_SIGNATURE (fetched with fips=yes, kept for the process's lifetime) that signs and verifies with a
    pure ML-DSA or SLH-DSA key: crypto_service's C fast path verifies with it as _pure_verify does."""
    if key.spec.family not in ("ML-DSA", "SLH-DSA"):
        raise InvalidInputError(f"{key.algorithm} is not a pure ML-DSA/SLH-DSA key")
    return _lib.fetch("EVP_SIGNATURE_fetch", key.spec.keytype)


def _pure_sign(key: PKey, family: str, message: bytes, context: bytes) -> bytes:
    """ML-DSA or SLH-DSA over the message itself, with an optional context string (the same EVP calls)."""
    s = require(key, family, True, f"{family} sign")
    message = as_bytes(message, "message")
    context = max_len(context, f"{family} context", MAX_CONTEXT)
    lib = _lib.ready()
    alg = _lib.fetch("EVP_SIGNATURE_fetch", s.keytype)
    sig = ctypes.create_string_buffer(s.signature_size)
    siglen = c_size_t(s.signature_size)
    with borrow(key) as pkey:
        ctx = _lib.check_ptr(lib.EVP_PKEY_CTX_new_from_pkey(None, pkey, None), f"{family} sign")
        try:
            p = _context_params(context)
            _lib.check(lib.EVP_PKEY_sign_message_init(ctx, alg, p.ref), f"{family} sign init")
            _lib.check(lib.EVP_PKEY_sign(ctx, sig, byref(siglen), message, len(message)), f"{s.name} sign")
        finally:
            lib.EVP_PKEY_CTX_free(ctx)
    return ctypes.string_at(sig, siglen.value)


def _pure_verify(key: PKey, family: str, message: bytes, signature: bytes, context: bytes) -> bool:
    s = require(key, family, False, f"{family} verify")
    message = as_bytes(message, "message")
    signature = as_bytes(signature, "signature")
    context = max_len(context, f"{family} context", MAX_CONTEXT)
    if len(signature) != s.signature_size:
        return False
    lib = _lib.ready()
    alg = _lib.fetch("EVP_SIGNATURE_fetch", s.keytype)
    with borrow(key) as pkey:
        ctx = _lib.check_ptr(lib.EVP_PKEY_CTX_new_from_pkey(None, pkey, None), f"{family} verify")
        try:
            p = _context_params(context)
            _lib.check(lib.EVP_PKEY_verify_message_init(ctx, alg, p.ref), f"{family} verify init")
            return _verdict(lib.EVP_PKEY_verify(ctx, signature, len(signature), message, len(message)))
        finally:
            lib.EVP_PKEY_CTX_free(ctx)


def ecdsa_sign(key: PKey, data: bytes, digest: str = "SHA256", prehashed: bool = False) -> bytes:
    """DER ECDSA-Sig-Value over data (or over the given digest when prehashed)."""
    require(key, "EC", True, "ECDSA sign")
    mdname, data = _digest_input(digest, data, prehashed)
    lib = _lib.ready()
    with borrow(key) as pkey:
        size = lib.EVP_PKEY_get_size(pkey)
        if size <= 0:
            raise _lib.error("ECDSA signature size")
        sig = ctypes.create_string_buffer(size)
        siglen = c_size_t(size)
        if prehashed:
            ctx = _lib.check_ptr(lib.EVP_PKEY_CTX_new_from_pkey(None, pkey, None), "ECDSA sign")
            try:
                p = Params().utf8(b"digest", mdname)
                _lib.check(lib.EVP_PKEY_sign_init_ex(ctx, p.ref), "ECDSA sign init")
                _lib.check(lib.EVP_PKEY_sign(ctx, sig, byref(siglen), data, len(data)), "ECDSA sign")
            finally:
                lib.EVP_PKEY_CTX_free(ctx)
        else:
            mctx = _lib.check_ptr(lib.EVP_MD_CTX_new(), "EVP_MD_CTX_new")
            try:
                _lib.check(lib.EVP_DigestSignInit_ex(mctx, None, mdname.encode(), None, None, pkey, None),
                           "ECDSA sign init")
                _lib.check(lib.EVP_DigestSign(mctx, sig, byref(siglen), data, len(data)), "ECDSA sign")
            finally:
                lib.EVP_MD_CTX_free(mctx)
    return ctypes.string_at(sig, siglen.value)


def ecdsa_verify(key: PKey, data: bytes, signature: bytes, digest: str = "SHA256", prehashed: bool = False) -> bool:
    require(key, "EC", False, "ECDSA verify")
    mdname, data = _digest_input(digest, data, prehashed)
    signature = as_bytes(signature, "signature")
    if not 0 < len(signature) <= key.spec.signature_size:
        return False
    lib = _lib.ready()
    with borrow(key) as pkey:
        if prehashed:
            ctx = _lib.check_ptr(lib.EVP_PKEY_CTX_new_from_pkey(None, pkey, None), "ECDSA verify")
            try:
                p = Params().utf8(b"digest", mdname)
                _lib.check(lib.EVP_PKEY_verify_init_ex(ctx, p.ref), "ECDSA verify init")
                return _verdict(lib.EVP_PKEY_verify(ctx, signature, len(signature), data, len(data)))
            finally:
                lib.EVP_PKEY_CTX_free(ctx)
        mctx = _lib.check_ptr(lib.EVP_MD_CTX_new(), "EVP_MD_CTX_new")
        try:
            _lib.check(lib.EVP_DigestVerifyInit_ex(mctx, None, mdname.encode(), None, None, pkey, None),
                       "ECDSA verify init")
            return _verdict(lib.EVP_DigestVerify(mctx, signature, len(signature), data, len(data)))
        finally:
            lib.EVP_MD_CTX_free(mctx)


def ecdsa_digest(data: bytes, digest: str = "SHA256") -> bytes:
    """The digest an ECDSA signature over data signs (SHA-256/384/512 in the FIPS provider): what a signer
    that takes a digest (a TPM key) is given."""
    mdname, data = _digest_input(digest, data, False)
    out, size = ctypes.create_string_buffer(64), c_size_t(0)
    _lib.check(_lib.ready().EVP_Q_digest(None, mdname.encode(), None, data, len(data), out, byref(size)), "digest")
    return out.raw[:size.value]


def _context_params(context: bytes) -> Params:
    """Keep the returned Params referenced while C uses `.ref`: it owns what the array points to."""
    p = Params()
    return p.octets(b"context-string", context) if context else p


def _digest_input(digest: str, data: bytes, prehashed: bool) -> tuple[str, bytes]:
    try:
        mdname, size = DIGESTS[digest.upper() if isinstance(digest, str) else digest]
    except (KeyError, TypeError):
        raise InvalidInputError(f"unsupported ECDSA digest {digest!r}; use SHA256, SHA384 or SHA512") from None
    data = as_bytes(data, "data")
    if prehashed and len(data) != size:
        raise InvalidInputError(f"prehashed {digest} input must be {size} bytes, got {len(data)}")
    return mdname, data


def _verdict(rc: int) -> bool:
    """1: valid. 0 or negative: invalid or malformed; the queue it leaves is not news."""
    if rc == 1:
        return True
    _lib.drain_errors()
    return False

