"""The target map: what the build knows per architecture, read from toolchains/ (its one definition).

- the C compiler and the target's runtime root, from toolchains/<arch>/host.profile (Conan builds
  OpenSSL and liboqs with the same profile; the tests read it too, through tests/support/targets.py);
- the hardening flags, from toolchains/hardening.mk (also rendered by toolchains/hardening.profile
  for Conan and included by the delivered example Makefile).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

TOOLCHAINS = Path(__file__).resolve().parent.parent / "toolchains"
ARCHS = ("x86_64", "aarch64")


def _profile(arch: str) -> str:
    return (TOOLCHAINS / arch / "host.profile").read_text()


def compiler(arch: str) -> str:
    """The C compiler of `arch` (tools.build:compiler_executables of its host profile)."""
    m = re.search(r"^tools\.build:compiler_executables=(\{.*\})$", _profile(arch), re.M)
    return ast.literal_eval(m.group(1))["c"]


def runtime_root(arch: str) -> str | None:
    """Where qemu-user finds the target's glibc (QEMU_LD_PREFIX of the host profile); None: native."""
    m = re.search(r"^QEMU_LD_PREFIX=(\S+)$", _profile(arch), re.M)
    return m.group(1) if m else None


def variables(path: Path = TOOLCHAINS / "hardening.mk") -> dict[str, list[str]]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value.split()
    return out


def cflags(arch: str) -> list[str]:
    v = variables()
    return v["HARDEN_CFLAGS"] + v[f"HARDEN_CFLAGS_{arch}"]


def shared_ldflags() -> list[str]:
    v = variables()
    return v["HARDEN_LDFLAGS"] + v["HARDEN_SHARED_LDFLAGS"]


def exe_ldflags() -> list[str]:
    v = variables()
    return v["HARDEN_LDFLAGS"] + v["HARDEN_EXE_LDFLAGS"]
