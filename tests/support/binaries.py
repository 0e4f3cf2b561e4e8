"""Which build of our programs a test runs: the sources (python -m ...) or a native Nuitka binary.

A test module marked `@pytest.mark.binaries` (tests/conftest.py) runs once per
member of `programs_under_test()`: from source, then each architecture's binary
(build/<arch>/bin/, made by `scons binaries`), the aarch64 one under qemu-user.
Its tests get the member as the `programs` fixture, and the fixtures that start
the service use it; unmarked modules get SOURCE. The test process itself stays
x86_64 Python and talks to an aarch64 service through the shared memory and the
Unix socket exactly as to a native one.

A binary runs with none of the source run's crutches: no PYTHONPATH and no
LD_LIBRARY_PATH, so it must find its own Python runtime and our OpenSSL in its
own folder.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from support.targets import ARCHS, BUILD, HOST, ROOT, Target
from wvds import programs as delivered

PROGRAMS = (*delivered.PROGRAMS, delivered.MULTICALL)  # the delivered programs and the multi-call entry
SOURCE_MODULES = {**delivered.PACKAGES, delivered.MULTICALL: "wvds"}  # python -m MODULE runs it from source


def bin_dir(arch: str) -> Path:
    return BUILD / arch / "bin"


def build_info(arch: str) -> dict:
    """build/<arch>/binaries.json, written by the build (files, sizes, the build root, times)."""
    path = BUILD / arch / "binaries.json"
    return json.loads(path.read_text()) if path.exists() else {}


def userland(arch: str) -> str:
    """The Debian 12 root the binaries were built in: qemu-user's -L prefix for the aarch64 ones.

    A whole Debian 12 arm64 userland, its own (Debian 3.0) libcrypto.so.3 included: the binaries
    must not pick that one up. The cross toolchain's glibc is the fallback.
    """
    root = build_info(arch).get("root", "")
    return root if root and Path(root, "usr/lib/aarch64-linux-gnu").is_dir() else Target(arch).toolchain.sysroot


@dataclass(frozen=True)
class Programs:
    """How to start our programs: from source with the host Python, or the binaries of one architecture."""
    target: Target  # whose code runs (the service's architecture)
    binary: bool

    @property
    def name(self) -> str:
        return f"{self.target.arch}-binary" if self.binary else "source"

    def argv(self, program: str, *args) -> list[str]:
        if program not in PROGRAMS:
            raise ValueError(program)
        if not self.binary:
            return [sys.executable, "-m", SOURCE_MODULES[program], *map(str, args)]
        cmd = self.target.command(bin_dir(self.target.arch) / program, *map(str, args))
        if cmd[0] != str(bin_dir(self.target.arch) / program):  # qemu called explicitly (no binfmt_misc)
            cmd[cmd.index("-L") + 1] = userland(self.target.arch)
        return cmd

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """base (e.g. the FIPS environment) plus what this kind of run needs, minus what it must not have."""
        env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
        if self.binary:
            if not self.target.native:
                env["QEMU_LD_PREFIX"] = userland(self.target.arch)
            return env
        env["PYTHONPATH"] = str(ROOT / "src")
        env["LD_LIBRARY_PATH"] = str(self.target.openssl_root / "lib")
        return env

    def check_built(self) -> None:
        if self.binary and not (bin_dir(self.target.arch) / "wvds").exists():
            raise FileNotFoundError(f"{bin_dir(self.target.arch)}/wvds missing: run 'scons binaries' "
                                    "(./run test does)")


SOURCE = Programs(HOST, binary=False)


def binaries(arch: str) -> Programs:
    return Programs(Target(arch), binary=True)


def programs_under_test(archs=ARCHS, source: bool = True, native_only: bool = False) -> list[Programs]:
    """What a module marked `binaries(source=..., native_only=...)` runs against: the sources (unless
    source=False) and the binaries of archs (only the native one if native_only)."""
    built = [binaries(a) for a in archs if Target(a).native or not native_only]
    return [SOURCE, *built] if source else built
