"""The OEM delivery tarball: what goes where, packed reproducibly.

Two builds of the same commit give byte-identical tarballs: entries sorted,
every mtime set to the commit time (or $SOURCE_DATE_EPOCH), owner 0:0 with no
names, normalised modes, and a gzip header without name or timestamp.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    dest: str  # path inside the tarball, below the top-level directory
    source: str  # file on the build machine
    executable: bool = False


def per_arch_entries(arch: str, build: str) -> list[Entry]:
    """Files shipped for one architecture, from build/<arch>/. Missing optional parts are skipped."""
    ossl = os.path.join(build, arch, "openssl")
    entries = [
        Entry(f"bin/{arch}/openssl", os.path.join(ossl, "bin", "openssl"), True),
        Entry(f"lib/{arch}/libcrypto.so.3", os.path.join(ossl, "lib", "libcrypto.so.3"), True),
        Entry(f"lib/{arch}/libssl.so.3", os.path.join(ossl, "lib", "libssl.so.3"), True),
        Entry(f"lib/{arch}/fips.so", os.path.join(ossl, "lib", "ossl-modules", "fips.so"), True),
        Entry(f"lib/{arch}/libl4re_crypto_service.so",
              os.path.join(build, arch, "clib", "libl4re_crypto_service.so"), True),
    ]
    return entries


def common_entries(root: str, build: str) -> list[Entry]:
    return [
        Entry("README_OEM.md", os.path.join(root, "README_OEM.md")),
        Entry("include/wvds_crypto.h", os.path.join(root, "src", "c", "include", "wvds_crypto.h")),
        Entry("examples/oem_gateway.c", os.path.join(root, "examples", "oem_gateway.c")),
        Entry("examples/Makefile", os.path.join(root, "examples", "Makefile")),
        Entry("licenses/OpenSSL-LICENSE.txt", os.path.join(build, "x86_64", "openssl", "licenses", "LICENSE.txt")),
    ]


def source_date_epoch(root: str) -> int:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "-C", root, "log", "-1", "--format=%ct"], capture_output=True,
                             text=True, check=True).stdout.strip()
        return int(out)
    except (subprocess.CalledProcessError, ValueError, FileNotFoundError):
        return 0


def _tarinfo(name: str, size: int, mode: int, mtime: int, kind=tarfile.REGTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime, ti.type = size, mode, mtime, kind
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def build_tarball(out_path: str, top: str, entries: list[Entry], mtime: int) -> str:
    """Write the tarball (with SHA256SUMS inside) atomically; return its sha256."""
    files: dict[str, tuple[bytes, bool]] = {}
    for e in entries:
        with open(e.source, "rb") as f:
            files[e.dest] = (f.read(), e.executable)
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, (data, _) in sorted(files.items()))
    files["SHA256SUMS"] = (sums.encode(), False)

    dirs = sorted({d for name in files for d in _parents(os.path.dirname(name))})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_tarinfo(top, 0, 0o755, mtime, tarfile.DIRTYPE))
        for d in dirs:
            tar.addfile(_tarinfo(f"{top}/{d}", 0, 0o755, mtime, tarfile.DIRTYPE))
        for name in sorted(files):
            data, executable = files[name]
            tar.addfile(_tarinfo(f"{top}/{name}", len(data), 0o755 if executable else 0o644, mtime),
                        io.BytesIO(data))
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
            gz.write(raw.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out_path)
    with open(out_path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _parents(path: str):
    """path and every parent directory of it ("a/b/c" -> "a/b/c", "a/b", "a")."""
    while path:
        yield path
        path = os.path.dirname(path)
