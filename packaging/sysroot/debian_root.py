"""Debian 12 build roots, one per architecture, created once and cached under $WVDS_CACHE.

The binaries run on a Debian 12 (glibc 2.36) userland, so they are compiled
against Debian 12's own python3.11 inside a Debian 12 root made by debootstrap
(--variant=minbase plus packages.txt), not against whatever Python the build
machine has. A root is keyed by what defines it (suite, architecture, the
package list, the steps below): `sysroot/<arch>-<key>/` is reused by every
clone and build on the machine until packages.txt changes. It is created in a
temporary directory and renamed into place when complete, under a lock, so an
interrupted or concurrent creation never leaves a half root behind.

Packages come from the machine's configured Debian mirror (read from the apt
sources, as the OpenSSL recipe does); no host name is written into the repo.
The exact versions installed are listed by `package_manifest()` into
build/<arch>/ for the bill of materials.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path

from sysroot.chroot import MOUNT_POINTS

SUITE = "bookworm"
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
HERE = Path(__file__).resolve().parent
PACKAGES_FILE = HERE / "packages.txt"
RECIPE_VERSION = "1"  # bump when the creation steps below change


def requested_packages(arch: str) -> list[str]:
    """packages.txt entries for this architecture."""
    deb_arch = DEBIAN_ARCH[arch]
    out = []
    for line in PACKAGES_FILE.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and (len(fields) == 1 or deb_arch in fields[1:]):
            out.append(fields[0])
    return out


def root_key(arch: str) -> str:
    h = hashlib.sha256()
    for part in (RECIPE_VERSION, SUITE, DEBIAN_ARCH[arch], *requested_packages(arch)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def root_path(arch: str, cache: Path) -> Path:
    return cache / "sysroot" / f"{arch}-{root_key(arch)}"


def mirror() -> str:
    """The first Debian archive in the machine's apt sources (recipes/openssl/fetch.py reads them)."""
    path = HERE.parents[1] / "recipes" / "openssl" / "fetch.py"
    spec = importlib.util.spec_from_file_location("wvds_openssl_fetch", path)
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    uris = fetch.apt_mirror_uris()
    if not uris:
        raise RuntimeError("no Debian mirror in the apt sources (/etc/apt/sources.list*)")
    return uris[0]


def ensure_root(arch: str, cache: Path, log) -> Path:
    """The complete build root for arch, creating it if needed (about 3 min for x86_64, 7 for aarch64)."""
    return debootstrap(root_path(arch, cache), arch, requested_packages(arch), log,
                       finish=lambda tmp: _finish(tmp, arch))


def debootstrap(root: Path, arch: str, packages: list[str], log, finish=None) -> Path:
    """A Debian 12 minbase root with packages at root, made once: in a temporary directory under a
    lock, completed by finish(tmp), marked complete and renamed into place. Also the QEMU guest (qemu/)."""
    if (root / ".complete").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build may be creating the same root
        if (root / ".complete").exists():
            return root
        tmp = root.with_name(root.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        started = time.monotonic()
        cmd = ["debootstrap", f"--arch={DEBIAN_ARCH[arch]}", "--variant=minbase",
               "--include=" + ",".join(packages), SUITE, str(tmp), mirror()]
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
        if r.returncode:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"debootstrap failed for {arch} (see {log.name})")
        if finish:
            finish(tmp)
        (tmp / ".complete").write_text(f"created in {time.monotonic() - started:.0f} s\n")
        os.replace(tmp, root)
        return root


def _finish(root: Path, arch: str) -> None:
    """Make the fresh root usable read-only: mount points, no caches, the x86_64 graft points."""
    subprocess.run(["chroot", str(root), "apt-get", "clean"], check=True, capture_output=True)
    for d in ("var/lib/apt/lists",):
        for p in (root / d).glob("*"):
            if p.is_file():
                p.unlink()
    for mp in MOUNT_POINTS:
        (root / mp.lstrip("/")).mkdir(parents=True, exist_ok=True)
    if arch == "aarch64":
        # The x86_64 cross compiler borrowed from the x86_64 root (mounted at /x86) is an x86_64 program:
        # the kernel runs it natively if its loader and libraries are where it looks for them. Neither path
        # is used by arm64 Debian, so these links change nothing for the root's own programs.
        (root / "usr/lib/x86_64-linux-gnu").symlink_to("/x86/usr/lib/x86_64-linux-gnu")
        if not (root / "lib64").exists() and not (root / "lib64").is_symlink():
            (root / "lib64").symlink_to("/x86/usr/lib64")


def package_manifest(root: Path) -> str:
    """Every installed Debian package with its exact version (package<TAB>version<TAB>arch), sorted."""
    r = subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W",
                        "-f=${Package}\t${Version}\t${Architecture}\n"], capture_output=True, text=True, check=True)
    return "".join(sorted(r.stdout.splitlines(keepends=True)))
