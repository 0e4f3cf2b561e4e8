"""toolchains/hardening.mk for the SCons builds: the hardening flags, per architecture."""
from __future__ import annotations

from pathlib import Path

MK = Path(__file__).resolve().parent.parent / "toolchains" / "hardening.mk"


def variables(path: Path = MK) -> dict[str, list[str]]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
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
