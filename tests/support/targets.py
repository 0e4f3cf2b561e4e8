"""Where each architecture's build lives and how to run its programs here.

aarch64 programs run under qemu-user: through binfmt_misc when it is registered,
otherwise by calling qemu-aarch64-static explicitly. Either way QEMU finds the
target's glibc in the cross toolchain's sysroot.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
ELF_MACHINE = {"x86_64": 62, "aarch64": 183}  # e_machine: EM_X86_64, EM_AARCH64


@dataclass(frozen=True)
class Toolchain:
    """How the tests build and run C programs for one architecture on this (x86_64) machine."""
    compiler: str  # the C compiler for programs of this architecture
    sysroot: str | None = None  # the cross toolchain's root: its glibc, for qemu-user's -L
    qemu: str | None = None  # the qemu-user program (binfmt_misc name) that runs them here


def _build_targets():
    """packaging/targets.py: the build's target map (compilers and runtime roots from toolchains/)."""
    spec = importlib.util.spec_from_file_location("wvds_build_targets", ROOT / "packaging" / "targets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BUILD_TARGETS = _build_targets()
# The tests' map of architecture -> toolchain (Target.compiler, .command, .env read it), from the build's.
TOOLCHAINS = {arch: Toolchain(_BUILD_TARGETS.compiler(arch), sysroot=_BUILD_TARGETS.runtime_root(arch),
                              qemu=None if _BUILD_TARGETS.runtime_root(arch) is None else f"qemu-{arch}")
              for arch in _BUILD_TARGETS.ARCHS}
ARCHS = _BUILD_TARGETS.ARCHS
# What a program gets when a test gives it no OpenSSL configuration: OpenSSL's defaults, never the
# machine's (our OpenSSL's OPENSSLDIR is the installed delivery's /etc/opt/wvds/ssl).
DEFAULT_OPENSSL_CONF = ROOT / "tests" / "support" / "openssl-defaults.cnf"


@dataclass(frozen=True)
class Target:
    arch: str

    @property
    def openssl_root(self) -> Path:
        return BUILD / self.arch / "openssl"

    @property
    def native(self) -> bool:
        return platform.machine() == self.arch

    @property
    def toolchain(self) -> Toolchain:
        return TOOLCHAINS[self.arch]

    @property
    def compiler(self) -> str:
        return self.toolchain.compiler

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for this target's programs: its own module directory and OpenSSL's default
        configuration unless extra says otherwise, never what the machine or the caller has set."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSSL_", "LD_LIBRARY_PATH"))}
        env["OPENSSL_CONF"] = str(DEFAULT_OPENSSL_CONF)
        env["OPENSSL_MODULES"] = str(self.openssl_root / "lib" / "ossl-modules")
        if not self.native:
            env["QEMU_LD_PREFIX"] = self.toolchain.sysroot
        env.update(extra)
        return env

    def command(self, program: str | os.PathLike, *args: str) -> list[str]:
        cmd = [str(program), *map(str, args)]
        qemu = self.toolchain.qemu
        if not self.native and not Path("/proc/sys/fs/binfmt_misc", qemu).exists():
            cmd = [shutil.which(f"{qemu}-static") or shutil.which(qemu), "-L", self.toolchain.sysroot, *cmd]
        return cmd

    def run(self, program, *args, env: dict[str, str] | None = None, check: bool = True,
            input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(program, *args), env=env or self.env(), input=input,
                              capture_output=True, check=check, timeout=timeout)


def elf_machine(path: Path) -> int:
    """e_machine of an ELF file (little-endian, 64-bit)."""
    head = Path(path).read_bytes()[:20]
    assert head[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(head[18:20], "little")


HOST = Target(platform.machine())  # the architecture the service runs natively here
