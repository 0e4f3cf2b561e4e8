"""Locating our C library (libl4re_crypto_service.so) for ctypes.

Order: $WVDS_CLIENT_LIB; next to an installed program (<prefix>/lib/<arch>/ and
<prefix>/lib/); the build tree (build/<arch>/clib/, for the sources and for the
native binaries in build/<arch>/bin/). The same library serves the
Python client (client side of the slot protocol) and the service (wvds_srv_*).
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

LIB_NAME = "libl4re_crypto_service.so"


def candidates() -> list[Path]:
    arch = platform.machine()
    out = []
    if os.environ.get("WVDS_CLIENT_LIB"):
        out.append(Path(os.environ["WVDS_CLIENT_LIB"]))
    # A native (Nuitka) binary's sys.executable is the binary itself, not an interpreter.
    exe_dir = Path(sys.executable).resolve().parent
    for prefix in (exe_dir.parent, exe_dir.parent.parent):
        out += [prefix / "lib" / arch / LIB_NAME, prefix / "lib" / LIB_NAME]
    if "__compiled__" in globals():  # a native binary in the build tree: build/<arch>/bin/ beside build/<arch>/clib/
        out.append(exe_dir.parent / "clib" / LIB_NAME)
    src_root = Path(__file__).resolve().parents[2]
    out.append(src_root / "build" / arch / "clib" / LIB_NAME)
    return out


def load_library() -> ctypes.CDLL:
    tried = []
    for path in candidates():
        if path.is_file():
            return ctypes.CDLL(str(path))
        tried.append(str(path))
    raise OSError(f"{LIB_NAME} not found; set WVDS_CLIENT_LIB. Tried: {', '.join(tried)}")
