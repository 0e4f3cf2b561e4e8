"""The C client library per architecture and compiling test programs against it (tests/c, tests/hostile;
the fixtures are in tests/c/conftest.py, the fake service the programs talk to in tests/support/fake_service.py).

Tests that take `arch` run once per architecture (--arch restricts them); aarch64 programs run
under qemu-user. The fake service always runs natively (it is Python on this machine), so an
aarch64 client talks to an x86_64 service over the same shared memory.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from support.build import scons
from support.targets import BUILD, HOST, ROOT, Target

C_SRC = ROOT / "src" / "c"
LIB_NAME = "libl4re_crypto_service.so"  # the OEM library
SERVICE_LIB = "libwvds_service.so"  # crypto_service's own
WARNINGS = ["-std=c11", "-pthread", "-Wall", "-Wextra", "-Werror"]


def library_sources() -> list[Path]:
    return [p for d in ("transport", "service", "lib") for p in sorted((C_SRC / d).glob("*.c"))]


def library_includes(arch: str) -> list[str]:
    """-I flags for compiling the library's sources (the service's fast path uses OpenSSL's headers only)."""
    dirs = [C_SRC / "include", C_SRC / "transport", C_SRC / "service", C_SRC / "lib", BUILD / arch / "openssl" / "include"]
    return [f"-I{d}" for d in dirs]


def library(arch: str) -> Path:
    """build/<arch>/clib/libl4re_crypto_service.so, brought up to date by `scons clib` once per session."""
    lib = BUILD / arch / "clib" / LIB_NAME
    scons("clib", arch, lib)
    return lib


def compile_c(arch: str, sources: list[Path], output: Path, flags: list[str] = (), libs: list[str] = ()) -> Path:
    cmd = [Target(arch).compiler, *WARNINGS, *flags, "-o", str(output), *map(str, sources), *libs]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return output


def build_variants(arch: str) -> dict[str, list[str]]:
    """Sanitizers where they run (natively: qemu-user cannot host ASan's shadow memory), and the
    hardened -O2 build the library ships as (memory-ordering bugs like to hide at -O1)."""
    hardened = ["-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"]
    if arch == HOST.arch:
        return {"sanitized": ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"], "hardened": hardened}
    return {"hardened": hardened}
