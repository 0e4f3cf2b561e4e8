"""What SCons builds into build/<arch>/provider/: wvds.so (an OpenSSL module that exports only
OSSL_provider_init and finds libl4re_crypto_service.so beside itself) and wvds-keyref, both for
the right machine and hardened like the client library."""
from __future__ import annotations

import re
import subprocess

import pytest

from support.targets import ELF_MACHINE, elf_machine


def readelf(*args) -> str:
    return subprocess.run(["readelf", *map(str, args)], capture_output=True, text=True, check=True).stdout


def dynamic(path) -> tuple[set[str], str]:
    dyn = readelf("-d", path)
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)), dyn


def test_module_exports_only_the_provider_entry_point(built):
    out = subprocess.run(["nm", "-D", "--defined-only", str(built / "wvds.so")], capture_output=True, text=True,
                         check=True).stdout
    assert {line.split()[-1] for line in out.splitlines()} == {"OSSL_provider_init"}


def test_module_links_the_client_library_and_libcrypto(built, target):
    needed, dyn = dynamic(built / "wvds.so")
    assert {"libl4re_crypto_service.so", "libcrypto.so.3"} <= needed, needed
    assert not any("ssl" in n for n in needed), needed
    assert "[$ORIGIN:$ORIGIN/..:$ORIGIN/../clib]" in dyn  # lib/<arch>/, lib/ossl-modules/, the build tree
    assert elf_machine(built / "wvds.so") == ELF_MACHINE[target.arch]


def test_tool_needs_only_the_client_library(built, target):
    needed, dyn = dynamic(built / "wvds-keyref")
    assert "libl4re_crypto_service.so" in needed and not any("crypto.so" in n for n in needed), needed
    assert f"[$ORIGIN/../../lib/{target.arch}:$ORIGIN/../lib:$ORIGIN/../clib]" in dyn  # delivery, install, build
    assert elf_machine(built / "wvds-keyref") == ELF_MACHINE[target.arch]


@pytest.mark.parametrize("name", ["wvds.so", "wvds-keyref"])
def test_is_hardened(built, name):
    path = built / name
    assert "BIND_NOW" in readelf("-d", path) and "GNU_RELRO" in readelf("-l", "-W", path)
    undefined = subprocess.run(["nm", "-D", "--undefined-only", str(path)], capture_output=True, text=True,
                               check=True).stdout
    assert "__stack_chk_fail" in undefined  # -fstack-protector-strong
    assert re.search(r"__\w+_chk\b", undefined.replace("__stack_chk_fail", ""))  # _FORTIFY_SOURCE
