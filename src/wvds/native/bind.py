"""The ctypes table of the native boundary, derived from wvds.native.spec (so it cannot drift from the C
declarations the build checks against the same spec)."""
from __future__ import annotations

import ctypes
import threading

from wvds.native import spec

_SCALARS = {
    "void": None, "int": ctypes.c_int, "double": ctypes.c_double, "size_t": ctypes.c_size_t,
    "uint8_t": ctypes.c_uint8, "uint16_t": ctypes.c_uint16, "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64, "int32_t": ctypes.c_int32, "wvds_status": ctypes.c_int,
}
_HANDLES = set(spec.OPAQUE) | {"wvds_conn"}  # pointers Python only passes around
_BYTES = {"uint8_t", "char"}  # buffers: bytes in, create_string_buffer out


def _struct(s: spec.Struct) -> type[ctypes.Structure]:
    fields = []
    for ctype, name, _ in s.fields:
        base = ctypes.c_void_p if ctype.endswith("*") else _SCALARS[ctype.replace("_Atomic ", "")]
        if "[" in name:
            name, n = name[:-1].split("[")
            base = base * int(n)
        fields.append((name, base))
    return type(s.name, (ctypes.Structure,), {"_fields_": fields})


STRUCTS = {s.name: _struct(s) for s in spec.STRUCTS}


def ctype(c: str):
    """The ctypes type for a C type of the spec."""
    c = c.replace("const ", "").strip()
    if c.endswith("**"):
        return ctypes.POINTER(ctypes.c_void_p)  # an out-parameter for a handle
    if c.endswith("*"):
        base = c[:-1].strip()
        if base == "void" or base in _HANDLES:
            return ctypes.c_void_p
        if base in _BYTES:
            return ctypes.c_char_p
        if base in STRUCTS:
            return ctypes.POINTER(STRUCTS[base])
        return ctypes.POINTER(_SCALARS[base])
    return _SCALARS[c]


def prototypes(library: str) -> dict[str, tuple[object, list]]:
    """name -> (restype, argtypes) of every function of `library` in the spec."""
    return {f.name: (ctype(f.restype), [ctype(t) for t, _ in f.args]) for f in spec.functions(library)}


_loaded: dict[str, ctypes.CDLL] = {}
_lock = threading.Lock()


def bind(lib: ctypes.CDLL, library: str) -> ctypes.CDLL:
    """Give `lib` (a loaded `library` of spec.LIBRARIES) the spec's prototypes; AttributeError if one is missing."""
    for name, (restype, argtypes) in prototypes(library).items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def load(library: str) -> ctypes.CDLL:
    """The process's copy of `library` ("client" or "service"), found by wvds.native.load_library, with
    every prototype of the spec set."""
    from wvds import native
    with _lock:
        if library not in _loaded:
            _loaded[library] = bind(native.load_library(spec.LIBRARIES[library]), library)
        return _loaded[library]
