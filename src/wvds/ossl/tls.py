"""TLS key-exchange groups for Python's ssl module, which (3.11) cannot set them itself.

Python 3.11's `ssl.SSLContext` has no `set_groups`; its `set_ecdh_curve` knows
only classic EC curves. The hybrid post-quantum groups of OpenSSL 3.5+
(X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024) can only be chosen
with SSL_CTX_set1_groups_list on the context's SSL_CTX. This module does that
one call, and reads back the group a connection negotiated (for logs and tests).

It reaches the SSL_CTX / SSL pointer inside CPython's _ssl objects (the first
field after the object header, resp. after the socket weakref, in CPython 3.11's
Modules/_ssl.c) and *proves* the pointer before using it: the context's options
read through libssl must equal `SSLContext.options`, and the connection's
protocol version read through libssl must equal `SSLObject.version()`.
Anything else raises instead of guessing.

libssl is opened by soname, which returns the copy _ssl already mapped (run with
LD_LIBRARY_PATH=<openssl>/lib so it is ours). This is the package's only libssl
use; it needs no `load()` (no libcrypto call is made).
"""
from __future__ import annotations

import ctypes
import ssl
import threading
from ctypes import c_char_p, c_int, c_long, c_uint64, c_void_p

from wvds.ossl.errors import InvalidInputError, OsslError

__all__ = ["set_groups", "negotiated_group"]

SSL_CTRL_SET_GROUPS_LIST = 92  # openssl/ssl.h

_lock = threading.Lock()
_libssl = None


def _lib():
    global _libssl
    with _lock:
        if _libssl is None:
            lib = ctypes.CDLL("libssl.so.3")
            lib.SSL_CTX_ctrl.argtypes = [c_void_p, c_int, c_long, c_void_p]
            lib.SSL_CTX_ctrl.restype = c_long
            lib.SSL_CTX_get_options.argtypes = [c_void_p]
            lib.SSL_CTX_get_options.restype = c_uint64
            lib.SSL_get_version.argtypes = [c_void_p]
            lib.SSL_get_version.restype = c_char_p
            lib.SSL_get0_group_name.argtypes = [c_void_p]
            lib.SSL_get0_group_name.restype = c_char_p
            lib.ERR_clear_error.argtypes = []
            lib.ERR_clear_error.restype = None
            _libssl = lib
    return _libssl


def _ctx_pointer(context: ssl.SSLContext) -> int:
    lib = _lib()
    ptr = c_void_p.from_address(id(context) + object.__basicsize__).value
    if not ptr or lib.SSL_CTX_get_options(ptr) != int(context.options):
        raise OsslError("cannot locate the SSL_CTX of this ssl.SSLContext (unsupported Python build)")
    return ptr


def set_groups(context: ssl.SSLContext, groups: list[str] | tuple[str, ...]) -> None:
    """Offer exactly these key-exchange groups (OpenSSL names, preference order).

    Raises InvalidInputError if OpenSSL rejects the list (an unknown group, or one
    the active providers do not offer: under FIPS, e.g., plain X25519).
    """
    if not groups or not all(isinstance(g, str) and g and ":" not in g for g in groups):
        raise InvalidInputError(f"groups must be a non-empty list of group names, got {groups!r}")
    lib = _lib()
    ptr = _ctx_pointer(context)
    text = ":".join(groups).encode()
    if lib.SSL_CTX_ctrl(ptr, SSL_CTRL_SET_GROUPS_LIST, 0, c_char_p(text)) != 1:
        lib.ERR_clear_error()
        raise InvalidInputError(f"OpenSSL refuses the TLS group list {':'.join(groups)} "
                                "(unknown, or not offered by the active providers)")


def negotiated_group(sock: ssl.SSLSocket | ssl.SSLObject) -> str:
    """Name of the key-exchange group of an established connection, e.g. "X25519MLKEM768"."""
    obj = getattr(sock, "_sslobj", sock)
    if obj is None:
        raise OsslError("connection has no TLS session")
    lib = _lib()
    # struct PySSLSocket { PyObject_HEAD; PyObject *Socket; SSL *ssl; ... }
    ptr = c_void_p.from_address(id(obj) + object.__basicsize__ + ctypes.sizeof(c_void_p)).value
    if not ptr or (lib.SSL_get_version(ptr) or b"").decode() != obj.version():
        raise OsslError("cannot locate the SSL of this connection (unsupported Python build)")
    name = lib.SSL_get0_group_name(ptr)
    return name.decode() if name else ""
