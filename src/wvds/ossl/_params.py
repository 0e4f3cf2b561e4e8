"""OSSL_PARAM arrays built in Python.

OpenSSL passes every algorithm setting and every piece of raw key material as an
array of OSSL_PARAM {key, data_type, data, data_size, return_size} ended by an
all-zero entry. `Params` builds one, keeps the Python objects its pointers refer
to alive for as long as the array is, and zeroizes the buffers it allocated
itself (`wipe`) — input bytes objects are immutable and cannot be wiped.
"""
from __future__ import annotations

import ctypes
import sys
from ctypes import c_char_p, c_size_t, c_uint, c_void_p

OSSL_PARAM_INTEGER = 1
OSSL_PARAM_UNSIGNED_INTEGER = 2
OSSL_PARAM_UTF8_STRING = 4
OSSL_PARAM_OCTET_STRING = 5
OSSL_PARAM_UTF8_PTR = 6
OSSL_PARAM_UNMODIFIED = ctypes.c_size_t(-1).value


class OSSL_PARAM(ctypes.Structure):
    _fields_ = [("key", c_char_p), ("data_type", c_uint), ("data", c_void_p), ("data_size", c_size_t),
                ("return_size", c_size_t)]


class Params:
    """Builder: ``Params().octets(b"pub", data).utf8(b"group", "P-256")``; pass ``.ref`` to C."""

    def __init__(self) -> None:
        self._entries: list[tuple[bytes, int, int, int]] = []
        self._keep: list[object] = []
        self._owned: list[ctypes.Array] = []
        self._array: ctypes.Array | None = None

    def _add(self, key: bytes, data_type: int, address: int, size: int) -> "Params":
        assert self._array is None, "Params already passed to C"
        self._entries.append((key, data_type, address, size))
        return self

    def octets(self, key: bytes, value: bytes) -> "Params":
        self._keep.append(value)
        return self._add(key, OSSL_PARAM_OCTET_STRING, _address(value), len(value))

    def utf8(self, key: bytes, value: str) -> "Params":
        raw = value.encode()
        self._keep.append(raw)
        return self._add(key, OSSL_PARAM_UTF8_STRING, _address(raw), len(raw))

    def unsigned_be(self, key: bytes, big_endian: bytes) -> "Params":
        """A big number given big-endian; OSSL_PARAM unsigned integers are native-endian."""
        native = big_endian if sys.byteorder == "big" else big_endian[::-1]
        buf = ctypes.create_string_buffer(native, len(native))
        self._owned.append(buf)
        return self._add(key, OSSL_PARAM_UNSIGNED_INTEGER, ctypes.addressof(buf), len(buf))

    def out_octets(self, key: bytes, size: int) -> ctypes.Array:
        buf = ctypes.create_string_buffer(size)
        self._owned.append(buf)
        self._add(key, OSSL_PARAM_OCTET_STRING, ctypes.addressof(buf), size)
        return buf

    def out_utf8_ptr(self, key: bytes) -> c_char_p:
        ptr = c_char_p()
        self._keep.append(ptr)
        self._add(key, OSSL_PARAM_UTF8_PTR, ctypes.addressof(ptr), ctypes.sizeof(ptr))
        return ptr

    def out_uint(self, key: bytes) -> c_uint:
        val = c_uint()
        self._keep.append(val)
        self._add(key, OSSL_PARAM_UNSIGNED_INTEGER, ctypes.addressof(val), ctypes.sizeof(val))
        return val

    @property
    def ref(self) -> ctypes.Array:
        """The terminated OSSL_PARAM array (built on first use)."""
        if self._array is None:
            arr = (OSSL_PARAM * (len(self._entries) + 1))()
            for slot, (key, data_type, address, size) in zip(arr, self._entries):
                slot.key, slot.data_type, slot.data, slot.data_size = key, data_type, address, size
                slot.return_size = OSSL_PARAM_UNMODIFIED
            arr.owner = self  # the array keeps alive everything its pointers refer to
            self._array = arr
        return self._array

    def returned(self, index: int) -> int:
        """return_size of entry index after a get call (OSSL_PARAM_UNMODIFIED if not set)."""
        return self.ref[index].return_size

    def wipe(self) -> None:
        for buf in self._owned:
            ctypes.memset(buf, 0, ctypes.sizeof(buf))

    def __enter__(self) -> "Params":
        return self

    def __exit__(self, *exc) -> None:
        self.wipe()


def _address(value: bytes) -> int:
    """Address of an immutable bytes object's buffer (no copy; the caller keeps value alive)."""
    return ctypes.cast(c_char_p(value), c_void_p).value
