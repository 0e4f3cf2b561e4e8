"""Random bytes from the FIPS provider's DRBG (RAND_bytes_ex on the default library context).

With the default query fips=yes the public DRBG is the FIPS provider's CTR-DRBG;
`wvds.ossl.fips.rand_provider()` tells which one it is, and the tests pin it.
"""
from __future__ import annotations

import ctypes

from wvds.ossl import _lib
from wvds.ossl.errors import InvalidInputError

__all__ = ["random_bytes"]

MAX_REQUEST = 1 << 30  # a sanity bound, far above anything the service asks for


def random_bytes(n: int) -> bytes:
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_REQUEST:
        raise InvalidInputError(f"random_bytes: n must be an int in 0..{MAX_REQUEST}, got {n!r}")
    lib = _lib.ready()
    if n == 0:
        return b""
    buf = ctypes.create_string_buffer(n)
    try:
        _lib.check(lib.RAND_bytes_ex(None, buf, n, 0), "RAND_bytes")
        return buf.raw
    finally:
        ctypes.memset(buf, 0, n)
