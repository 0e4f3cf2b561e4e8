"""Helpers for the C client library tests (fixtures are in conftest.py): the library per architecture, compiling test
programs for an architecture, and a fake service (tests/c/fake_service.py) to talk to.

Tests that take `arch` run once per architecture (--arch restricts them); aarch64 programs run
under qemu-user. The fake service always runs natively (it is Python on this machine), so an
aarch64 client talks to an x86_64 service over the same shared memory.
"""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import pytest

from support.targets import ARCHS, BUILD, ROOT, Target

C_SRC = ROOT / "src" / "c"
LIB_NAME = "libl4re_crypto_service.so"
COMPILER = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}
WARNINGS = ["-std=c11", "-pthread", "-Wall", "-Wextra", "-Werror"]
HOST = platform.machine()


def library_sources() -> list[Path]:
    return [p for d in ("transport", "service", "lib") for p in sorted((C_SRC / d).glob("*.c"))]


def library_includes(arch: str) -> list[str]:
    """-I flags for compiling the library's sources (the service's fast path uses OpenSSL's headers only)."""
    dirs = [C_SRC / "include", C_SRC / "transport", C_SRC / "service", C_SRC / "lib", BUILD / arch / "openssl" / "include"]
    return [f"-I{d}" for d in dirs]


_built: dict[str, Path] = {}


def library(arch: str) -> Path:
    """build/<arch>/clib/libl4re_crypto_service.so, brought up to date by `scons clib` once per session."""
    if arch not in _built:
        r = subprocess.run(["scons", "-Q", f"ARCHS={arch}", "clib"], cwd=ROOT, capture_output=True, text=True)
        lib = BUILD / arch / "clib" / LIB_NAME
        if r.returncode or not lib.exists():
            pytest.fail(f"`scons clib ARCHS={arch}` failed (is packaging/SConscript.clib in SConstruct?):\n"
                        f"{r.stdout[-3000:]}{r.stderr[-3000:]}")
        _built[arch] = lib
    return _built[arch]


def compile_c(arch: str, sources: list[Path], output: Path, flags: list[str] = (), libs: list[str] = ()) -> Path:
    cmd = [COMPILER[arch], *WARNINGS, *flags, "-o", str(output), *map(str, sources), *libs]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return output
