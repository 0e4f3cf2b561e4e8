"""Turn Nuitka's main.dist into build/<arch>/bin/: our OpenSSL in, three program names, checked.

Nuitka copies the root's libcrypto.so.3/libssl.so.3 (Debian's OpenSSL 3.0) because
Python's _ssl and _hashlib need them. They are replaced by the product's OpenSSL
3.6.3 (FIPS-capable) build: OpenSSL keeps its ABI within 3.x, and Nuitka gives
every binary in the folder an RPATH of $ORIGIN, so _ssl, _hashlib and our ctypes
bindings (which open libcrypto.so.3 by soname and get the copy already mapped) all
use this one library - never a system copy, whatever the device has installed.

The check afterwards is strict: every ELF file is for the target machine, every
library any of them needs is in the folder or is part of glibc, the OpenSSL files
are byte-identical to the product's build, and no file holds another crypto
library (crypto_scan.py). The TPM stack (tpm2-tss) is the device's: wvds.tpm2
opens it by soname at run time, so nothing here links it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import crypto_scan
from wvds.programs import MULTICALL, PROGRAMS
OPENSSL_LIBS = ("libcrypto.so.3", "libssl.so.3")
ELF_MACHINE = {"x86_64": 62, "aarch64": 183}
STRIP = {"x86_64": "strip", "aarch64": "aarch64-linux-gnu-strip"}  # host binutils
# Provided by every Debian 12 system, never bundled: glibc, libgcc-s1 (Essential) and zlib1g (Priority
# required; Nuitka never bundles libz, assuming it everywhere).
# Extension modules Nuitka copies because CPython's start-up imports every codec, which the programs never
# use: the CJK codecs (about 1 MB). Importing one of their encodings raises LookupError ("unknown encoding").
UNUSED_EXTENSIONS = re.compile(r"^(_codecs_(cn|hk|iso2022|jp|kr|tw)|_multibytecodec)\.")
SYSTEM_LIBS = re.compile(r"^(libc|libm|libpthread|libdl|librt|libutil|libresolv|libgcc_s|libz)\.so\.\d+$|^ld-linux-")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def elf_machine(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little")


def needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def assemble(arch: str, dist: Path, openssl_lib: Path, dest: Path) -> dict:
    """Copy dist to dest (without UNUSED_EXTENSIONS) with our OpenSSL and the program links; verify;
    return the file inventory."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(dist, tmp, symlinks=True,
                    ignore=lambda _, names: [n for n in names if UNUSED_EXTENSIONS.match(n)])
    strip_debug_info(arch, tmp)
    for lib in OPENSSL_LIBS:
        shutil.copy2(openssl_lib / lib, tmp / lib)
    for name in PROGRAMS:
        (tmp / name).symlink_to(MULTICALL)
    problems = verify(arch, tmp, openssl_lib)
    if problems:
        raise RuntimeError(f"{dest} would be broken:\n  " + "\n  ".join(problems))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return inventory(dest)


def strip_debug_info(arch: str, folder: Path) -> None:
    """Wheels' extension modules often carry debug info (python-pkcs11: 7.2 MB, 0.8 MB stripped)."""
    for path in sorted(folder.rglob("*.so*")):
        if path.is_file() and not path.is_symlink() and elf_machine(path) is not None:
            subprocess.run([STRIP[arch], "--strip-unneeded", str(path)], check=True, capture_output=True)


def verify(arch: str, folder: Path, openssl_lib: Path) -> list[str]:
    problems = []
    present = {p.name for p in folder.rglob("*") if p.is_file()}
    elves = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        machine = elf_machine(path)
        if machine is None:
            continue
        elves += 1
        rel = path.relative_to(folder)
        if machine != ELF_MACHINE[arch]:
            problems.append(f"{rel}: ELF machine {machine}, not {arch}")
        for lib in needed(path):
            if lib not in present and not SYSTEM_LIBS.match(lib):
                problems.append(f"{rel} needs {lib}, which is neither in the folder nor part of glibc")
    if elves < 3:
        problems.append(f"only {elves} ELF files: not a Nuitka standalone folder")
    for lib in OPENSSL_LIBS:
        if sha256(folder / lib) != sha256(openssl_lib / lib):
            problems.append(f"{lib} is not the product's OpenSSL build")
    if b"OpenSSL 3.6." not in (folder / "libcrypto.so.3").read_bytes():
        problems.append("libcrypto.so.3 is not OpenSSL 3.6")
    problems += [p.replace(str(folder) + "/", "") for p in crypto_scan.scan_paths([folder])]
    if not os.access(folder / MULTICALL, os.X_OK):
        problems.append(f"{MULTICALL} is missing or not executable")
    return problems


def inventory(folder: Path) -> dict:
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            files[rel] = {"link": os.readlink(path)}
        elif path.is_file():
            files[rel] = {"size": path.stat().st_size, "sha256": sha256(path)}
    total = sum(f.get("size", 0) for f in files.values())
    return {"files": files, "total_bytes": total, "multicall_bytes": files[MULTICALL]["size"]}


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
