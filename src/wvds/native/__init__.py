"""The native boundary: our two C libraries, where they are found, and how Python calls them.

- spec.py: the one definition of the boundary (functions with their C types, transport constants
  and layouts); cheader.py generates the C declarations from it and checks the headers; bind.py
  derives the ctypes table from it (`bind.load("client")`, `bind.load("service")`).
- here: locating a library for ctypes. Order: an explicit path ($WVDS_CLIENT_LIB for the OEM
  library, $WVDS_SERVICE_LIB for the service's, which is otherwise also looked for beside
  $WVDS_CLIENT_LIB); beside the running program (bin/<arch>/ of the delivery and of an
  installation hold the service library); <prefix>/lib/<arch>/ and <prefix>/lib/ of an installed
  program; the build tree (build/<arch>/clib/, for the sources and the binaries in build/<arch>/bin/).
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

from wvds.native.spec import LIBRARIES

CLIENT_LIB, SERVICE_LIB = LIBRARIES["client"], LIBRARIES["service"]


def candidates(name: str = CLIENT_LIB) -> list[Path]:
    arch = platform.machine()
    out = []
    client = os.environ.get("WVDS_CLIENT_LIB")
    if name == CLIENT_LIB and client:
        out.append(Path(client))
    if name == SERVICE_LIB:
        if os.environ.get("WVDS_SERVICE_LIB"):
            out.append(Path(os.environ["WVDS_SERVICE_LIB"]))
        if client:
            out.append(Path(client).parent / name)
    # A native (Nuitka) binary's sys.executable is the binary itself, not an interpreter.
    exe_dir = Path(sys.executable).resolve().parent
    if "__compiled__" in globals():
        out.append(exe_dir / name)
    for prefix in (exe_dir.parent, exe_dir.parent.parent):
        out += [prefix / "lib" / arch / name, prefix / "lib" / name]
    if "__compiled__" in globals():  # a native binary in the build tree: build/<arch>/bin/ beside build/<arch>/clib/
        out.append(exe_dir.parent / "clib" / name)
    src_root = Path(__file__).resolve().parents[3]
    out.append(src_root / "build" / arch / "clib" / name)
    return out


def load_library(name: str = CLIENT_LIB) -> ctypes.CDLL:
    tried = []
    for path in candidates(name):
        if path.is_file():
            return ctypes.CDLL(str(path))
        tried.append(str(path))
    hint = "WVDS_CLIENT_LIB" if name == CLIENT_LIB else "WVDS_SERVICE_LIB"
    raise OSError(f"{name} not found; set {hint}. Tried: {', '.join(tried)}")
