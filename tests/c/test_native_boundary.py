"""The native boundary (src/wvds/native/spec.py) against the C headers and the built libraries.

The spec is the one definition: the service library's header and the transport layout are generated
from it, the OEM header's functions that Python calls are checked against it, and Python's ctypes table
is derived from it. Here: the generated blocks are current and the headers say what the spec says (the
check the build runs, and proof that it notices a disagreement); each library of each architecture
exports every function the spec gives it and Python binds every one of them with the types the header
declares; the layout compiled from slots.h is the one Python uses for the handshake and the mapping.
"""
from __future__ import annotations

import ctypes
import struct
import subprocess

import pytest

from support.clib import C_SRC, SERVICE_LIB, compile_c
from support.clib import library as clib_library
from support.targets import HOST
from wvds.native import bind, cheader, spec
from wvds.transport import linux_shm

LIBRARY_FILES = {"client": "libl4re_crypto_service.so", "service": SERVICE_LIB}


def test_generated_blocks_are_current_and_headers_agree_with_the_spec():
    assert cheader.main(["--check"]) == 0
    assert cheader.disagreements() == []


def test_a_header_that_disagrees_with_the_spec_is_refused(tmp_path, monkeypatch):
    edited = tmp_path / "wvds_crypto.h"
    text = cheader.OEM_H.read_text()
    assert "size_t len, void *resp" in text
    edited.write_text(text.replace("size_t len, void *resp", "uint32_t len, void *resp"))
    monkeypatch.setattr(cheader, "OEM_H", edited)
    problems = cheader.disagreements()
    assert len(problems) == 1 and "wvds_transact" in problems[0]


def test_a_hand_edit_inside_a_generated_block_is_refused(tmp_path, monkeypatch, capsys):
    edited = tmp_path / "wvds_srv.h"
    edited.write_text(cheader.SRV_H.read_text().replace("uint64_t limit)", "uint32_t limit)"))
    monkeypatch.setattr(cheader, "BLOCKS", {edited: cheader.srv_block})
    assert cheader.main(["--check"]) == 1
    assert "stale generated block" in capsys.readouterr().err


def test_libraries_export_the_spec_and_python_binds_it(clib, arch):
    for library, name in LIBRARY_FILES.items():
        path = clib.parent / name
        out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True,
                             check=True).stdout
        exported = {line.split()[-1] for line in out.splitlines()}
        missing = {f.name for f in spec.functions(library)} - exported
        assert not missing, f"{name} lacks {missing}"
    other = {f.name for f in spec.functions("service")} & {line.split()[-1] for line in subprocess.run(
        ["nm", "-D", "--defined-only", str(clib)], capture_output=True, text=True, check=True).stdout.splitlines()}
    assert not other, f"the OEM library exports service functions {other}"


@pytest.mark.parametrize("library", ["client", "service"])
def test_every_prototype_python_sets_is_the_one_the_header_declares(library):
    """On this machine's architecture (ctypes loads no other; the exports of both are checked above)."""
    lib = bind.bind(ctypes.CDLL(str(clib_library(HOST.arch).parent / LIBRARY_FILES[library])), library)
    header = cheader.SRV_H if library == "service" else cheader.OEM_H
    declared = cheader.declared(header)
    for f in spec.functions(library):
        restype, argtypes = declared[f.name]
        fn = getattr(lib, f.name)
        assert fn.restype == bind.ctype(restype), f.name
        assert fn.argtypes == [bind.ctype(t) for t in argtypes], f.name


LAYOUT_PROGRAM = r"""
#include <stddef.h>
#include <stdio.h>
#include "slots.h"
#define P(x) printf(#x " %lu\n", (unsigned long)(x))
int main(void)
{
    P(WVDS_TRANSPORT_MAGIC); P(WVDS_TRANSPORT_VERSION); P(WVDS_HELLO_SIZE); P(WVDS_WELCOME_SIZE);
    P(WVDS_SHM_SLOTS_OFFSET); P(WVDS_SLOT_SIZE); P(WVDS_SLOT_REQ_AREA); P(WVDS_SLOT_RESP_OFFSET);
    P(sizeof(wvds_shm_control)); P(offsetof(wvds_shm_control, client_id)); P(offsetof(wvds_shm_control, reserved));
    P(sizeof(wvds_slot_header)); P(offsetof(wvds_slot_header, seq));
    return 0;
}
"""


def test_the_compiled_layout_is_the_one_python_uses(arch, runner, tmp_path):
    src = tmp_path / "layout.c"
    src.write_text(LAYOUT_PROGRAM)
    program = compile_c(arch, [src], tmp_path / "layout", [f"-I{C_SRC / 'include'}", f"-I{C_SRC / 'transport'}"])
    values = dict(line.rsplit(" ", 1) for line in runner.run(program).stdout.decode().splitlines())
    values = {k: int(v) for k, v in values.items()}
    assert values["WVDS_TRANSPORT_MAGIC"] == linux_shm.TRANSPORT_MAGIC == struct.unpack("<I", b"WVDS")[0]
    assert values["WVDS_TRANSPORT_VERSION"] == linux_shm.TRANSPORT_VERSION
    assert values["WVDS_HELLO_SIZE"] == linux_shm.HELLO.size and values["WVDS_WELCOME_SIZE"] == linux_shm.WELCOME.size
    assert values["WVDS_SLOT_REQ_AREA"] == linux_shm.REQ_AREA
    assert values["WVDS_SHM_SLOTS_OFFSET"] == linux_shm.SLOTS_OFFSET
    assert values["sizeof(wvds_shm_control)"] == 64 and values["offsetof(wvds_shm_control, reserved)"] == 32
    assert values["sizeof(wvds_slot_header)"] == 64 and values["offsetof(wvds_slot_header, seq)"] == 12
    assert len(spec.HELLO[1]) == len(linux_shm.HELLO.unpack(bytes(linux_shm.HELLO.size)))
    assert len(spec.WELCOME[1]) == len(linux_shm.WELCOME.unpack(bytes(linux_shm.WELCOME.size)))
