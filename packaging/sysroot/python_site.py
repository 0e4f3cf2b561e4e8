"""The third-party Python packages the binaries contain, built for the target architecture.

The product imports asn1crypto (est_service) and python-pkcs11 (the PKCS#11 key
store backend); the TPM backend binds tpm2-tss itself (wvds.tpm2), so no
tpm2-pytss and none of what it imports (pyca/cryptography, cffi). Packages with
compiled parts must be aarch64 code in the aarch64 binaries, so they are
installed by the *root's* pip into a site directory for that root:

1. download (on the host, with the pinned tool pip): wheels for the target
   platform where PyPI has them, the sdist otherwise (marked "source" in
   python-runtime.txt, none today), plus the pinned build requirements of the sdists;
2. install (inside the root, offline: --no-index): pip picks the wheels and
   builds the sdists with the root's compiler against the root's libraries.

Versions: those of requirements/dev.txt (the ones the tests from source use)
unless python-runtime.txt pins one itself. The site directory is cached like
the root, keyed by the root and the pins; `installed()` lists what is in it.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sysroot import chroot

HERE = Path(__file__).resolve().parent
RUNTIME_FILE = HERE / "python-runtime.txt"
DEV_PINS = HERE.parents[1] / "requirements" / "dev.txt"
PLATFORMS = {"x86_64": ["manylinux_2_36_x86_64"] + [f"manylinux_2_{v}_x86_64" for v in (34, 28, 17)]
             + ["manylinux2014_x86_64"],
             "aarch64": ["manylinux_2_36_aarch64"] + [f"manylinux_2_{v}_aarch64" for v in (34, 28, 17)]
             + ["manylinux2014_aarch64"]}


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    source: bool  # build from the sdist
    build_only: bool

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> list[Pin]:
    dev = {}
    for line in DEV_PINS.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line)
        if m:
            dev[_normal(m.group(1))] = m.group(2)
    out = []
    for line in RUNTIME_FILE.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        name, _, version = fields[0].partition("==")
        if not version:
            version = dev.get(_normal(name))
            if version is None:
                raise RuntimeError(f"{RUNTIME_FILE.name}: {name} has no version and is not pinned in {DEV_PINS}")
        out.append(Pin(name, version, "source" in fields[1:], "build-only" in fields[1:]))
    return out


def site_key(root: Path) -> str:
    h = hashlib.sha256(root.name.encode())
    for p in pins():
        h.update(f"{p.spec} {p.source} {p.build_only}\n".encode())
    return h.hexdigest()[:16]


def site_path(arch: str, root: Path, cache: Path) -> Path:
    return cache / "sysroot" / f"{arch}-site-{site_key(root)}"


def download(arch: str, dest: Path, log) -> None:
    """Fetch every pinned distribution for arch into dest (host side, needs the package registry)."""
    dest.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(dest)]
    binary = [p.spec for p in pins() if not p.source]
    platform = [a for plat in PLATFORMS[arch] for a in ("--platform", plat)]
    cmds = [pip + ["--only-binary=:all:", *platform, "--python-version", "3.11", "--implementation", "cp",
                   "--abi", "cp311", "--abi", "abi3", "--abi", "none", *binary]]
    cmds += [pip + [p.spec] for p in pins() if p.source]  # no wheel anywhere: the sdist
    for cmd in cmds:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
        if r.returncode:
            raise RuntimeError(f"pip download failed for {arch} (see {log.name})")


def ensure_site(arch: str, root: Path, cache: Path, log, env: dict[str, str], binds: list[chroot.Bind]) -> Path:
    """The site directory with every runtime package installed for root's Python; created if needed.

    env/binds: the compiler setup to build sdists with (the same as Nuitka's, see binaries/toolchain.py).
    """
    site = site_path(arch, root, cache)
    if (site / ".complete").exists():
        return site
    site.parent.mkdir(parents=True, exist_ok=True)
    with open(site.parent / f".{arch}-site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (site / ".complete").exists():
            return site
        wheels = cache / "wheels" / arch
        download(arch, wheels, log)
        tmp = site.with_name(site.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        runtime = [p.spec for p in pins() if not p.build_only]
        chroot.run(root, ["python3", "-m", "pip", "install", "--no-index", "--find-links", "/wvds/wheels",
                          "--no-deps", "--no-compile", "--disable-pip-version-check", "--target", "/wvds/site",
                          *runtime],
                   binds=[*binds, chroot.Bind(wheels, "/wvds/wheels"), chroot.Bind(tmp, "/wvds/site", True)],
                   env={**env, "PIP_NO_CACHE_DIR": "1"}, log=log)
        (tmp / ".complete").write_text("".join(f"{s}\n" for s in runtime))
        os.replace(tmp, site)
        return site


def installed(site: Path) -> list[tuple[str, str]]:
    """(name, version) of every distribution in the site directory, from its .dist-info metadata."""
    out = []
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        fields = dict(re.findall(r"^(Name|Version): (.+)$", meta.read_text(errors="replace"), re.M))
        out.append((fields.get("Name", meta.parent.name), fields.get("Version", "?")))
    return out
