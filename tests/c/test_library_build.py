"""What SCons builds into build/<arch>/clib/: the two libraries and the example.

The OEM library exports exactly the documented API (wvds_* of wvds_crypto.h) and nothing of the
service; the service library exactly wvds_srv_* of wvds_srv.h. Both link nothing but libc (no
libcrypto: the client side does no cryptography, the service's AES fast path calls the libcrypto the
service hands it), and carry the hardening the other shipped binaries carry.
"""
import re
import subprocess

import pytest

from support.clib import C_SRC, LIB_NAME, SERVICE_LIB
from support.targets import ELF_MACHINE, elf_machine


def declared(header):
    """Function names declared with WVDS_API (OEM) or WVDS_SRV_API (service) in a header."""
    text = header.read_text()
    return set(re.findall(r"WVDS_(?:SRV_)?API\s+[\w\s\*]*?\b(wvds_\w+)\s*\(", text))


def readelf(*args):
    return subprocess.run(["readelf", *args], capture_output=True, text=True, check=True).stdout


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.split()[1] in "TtWwDdBbRr"}


def test_exports_exactly_the_documented_api(clib):
    public = declared(C_SRC / "include" / "wvds_crypto.h")
    service = declared(C_SRC / "service" / "wvds_srv.h")
    assert len(public) > 30 and {"wvds_srv_shm_size", "wvds_srv_init_control", "wvds_srv_next", "wvds_srv_pending",
                                 "wvds_srv_complete", "wvds_srv_serve", "wvds_srv_fast_setup",
                                 "wvds_srv_bucket_allow", "wvds_srv_aes_key_count"} <= service
    assert all(name.startswith("wvds_srv_") for name in service) and not public & service
    assert exported(clib) == public  # the OEM library carries nothing of the service
    assert exported(clib.parent / SERVICE_LIB) == service


@pytest.mark.parametrize("name", [LIB_NAME, SERVICE_LIB])
def test_links_only_libc(clib, arch, name):
    lib = clib.parent / name
    dyn = readelf("-d", str(lib))
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn))
    assert not any("crypto" in n or "ssl" in n for n in needed), needed
    assert needed <= {"libc.so.6", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}, needed
    assert f"Library soname: [{name}]" in dyn
    assert elf_machine(lib) == ELF_MACHINE[arch]


@pytest.mark.parametrize("name", [LIB_NAME, SERVICE_LIB])
def test_is_hardened(clib, name):
    lib = clib.parent / name
    dyn = readelf("-d", str(lib))
    assert "BIND_NOW" in dyn and "NOW" in dyn  # -z now
    assert "GNU_RELRO" in readelf("-l", "-W", str(lib))  # -z relro
    undefined = subprocess.run(["nm", "-D", "--undefined-only", str(lib)], capture_output=True, text=True,
                               check=True).stdout
    assert "__stack_chk_fail" in undefined  # -fstack-protector-strong
    assert re.search(r"__\w+_chk\b", undefined.replace("__stack_chk_fail", ""))  # _FORTIFY_SOURCE


def test_example_is_built_against_the_library(clib, arch):
    example = clib.parent / "oem_gateway"
    assert elf_machine(example) == ELF_MACHINE[arch]
    dyn = readelf("-d", str(example))
    assert f"Shared library: [{LIB_NAME}]" in dyn and "[$ORIGIN]" in dyn
