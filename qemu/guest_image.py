"""The aarch64 QEMU guest: a Debian 12 arm64 system made by the project from Debian packages.

    python qemu/guest_image.py          # build (or find) the cached guest; prints its files

What it is: `debootstrap --variant=minbase` of Debian 12 arm64 with systemd, udev and
Debian's arm64 kernel (linux-image-arm64, whose initramfs-tools initrd is made inside the
root under qemu-user), from the machine's configured Debian mirror, plus the files in
qemu/guest/ (fstab, static network for QEMU's user-mode network, the unit that runs the
smoke test from the payload disk and powers off). Nothing prebuilt comes from elsewhere.

Cached under $WVDS_CACHE/qemu/, keyed by the package list, the files in qemu/guest/ and
RECIPE_VERSION: `root-<key>/` (the debootstrap tree) and `guest-<key>/` (vmlinuz, initrd.img,
rootfs.img - an ext4 image made with `mkfs.ext4 -d`, so no loop device or mount is needed).
The run boots rootfs.img with -snapshot: the cached image is never written.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "packaging"))
from sysroot import debian_root  # noqa: E402

RECIPE_VERSION = "1"  # bump when the steps below change
PACKAGES = ["systemd-sysv", "udev", "kmod", "linux-image-arm64", "iproute2", "procps"]
GUEST_FILES = HERE / "guest"
IMAGE_MB = 1536
# The guest kernel's command line, on QEMU (qemu/run_smoke.py) and under uvmm (l4re/vm_image.py).
KERNEL_CMDLINE = "console=ttyAMA0 root=LABEL=wvds-guest rw panic=-1 systemd.show_status=auto"


def cache_dir() -> Path:
    return Path(os.environ.get("WVDS_CACHE", Path.home() / ".cache" / "wvds")) / "qemu"


def _key(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part + b"\0")
    return h.hexdigest()[:16]


def root_key() -> str:
    return _key(RECIPE_VERSION.encode(), debian_root.SUITE.encode(), *(p.encode() for p in PACKAGES))


def guest_key() -> str:
    files = sorted(p for p in GUEST_FILES.rglob("*") if p.is_file())
    return _key(root_key().encode(), str(IMAGE_MB).encode(),
                *(str(p.relative_to(GUEST_FILES)).encode() + b"\0" + p.read_bytes() for p in files))


def ensure_root(log) -> Path:
    """The debootstrap tree (about 10 min the first time: the second stage and the initrd run under qemu-user)."""
    return debian_root.debootstrap(cache_dir() / f"root-{root_key()}", "aarch64", PACKAGES, log)


def _files(out: Path) -> dict[str, Path]:
    return {"kernel": out / "vmlinuz", "initrd": out / "initrd.img", "rootfs": out / "rootfs.img"}


def cached_guest() -> dict[str, Path] | None:
    """The guest's files if this guest_key() has been built, else None (never builds)."""
    out = cache_dir() / f"guest-{guest_key()}"
    return _files(out) if (out / ".complete").exists() else None


def ensure_guest(log=None) -> dict[str, Path]:
    """kernel, initrd and root file system image of the guest, made once per guest_key()."""
    log = log or sys.stderr
    out = cache_dir() / f"guest-{guest_key()}"
    files = _files(out)
    if (out / ".complete").exists():
        return files
    root = ensure_root(log)
    started = time.monotonic()
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tree = tmp / "tree"
    tmp.mkdir(parents=True)
    # a private copy of the cached root (hard links would share inodes with the cache: copy)
    subprocess.run(["cp", "-a", f"{root}/.", str(tree)], check=True)
    (tree / ".complete").unlink(missing_ok=True)
    boot = tree / "boot"
    shutil.copy(_one(boot.glob("vmlinuz-*")), tmp / "vmlinuz")
    shutil.copy(_one(boot.glob("initrd.img-*")), tmp / "initrd.img")
    _customise(tree)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "wvds-guest", "-d", str(tree), str(tmp / "rootfs.img"),
                    f"{IMAGE_MB}M"], check=True, stdout=log, stderr=subprocess.STDOUT)
    shutil.rmtree(tree)
    (tmp / ".complete").write_text(f"made in {time.monotonic() - started:.0f} s\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    for old in out.parent.glob("guest-*"):  # images of earlier guest/ files (1.6 GB each, sparse)
        if old != out and ".tmp-" not in old.name:
            shutil.rmtree(old, ignore_errors=True)
    return files


def _one(paths) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise RuntimeError(f"expected one kernel file, found {found}")
    return found[0]


def _customise(tree: Path) -> None:
    """qemu/guest/ over the root; services enabled the way systemctl enable would (links)."""
    subprocess.run(["cp", "-a", "--no-preserve=ownership", f"{GUEST_FILES}/.", str(tree)], check=True)
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for unit, target in (("wvds-smoke.service", "/etc/systemd/system/wvds-smoke.service"),
                         ("systemd-networkd.service", "/lib/systemd/system/systemd-networkd.service")):
        link = wants / unit
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    # the login prompt on the serial console and the wait for a network that is configured statically
    for unit in ("serial-getty@ttyAMA0.service", "getty@tty1.service", "systemd-networkd-wait-online.service"):
        mask = tree / "etc/systemd/system" / unit
        mask.unlink(missing_ok=True)
        mask.symlink_to("/dev/null")
    (tree / "etc/hostname").write_text("wvds-guest\n")
    (tree / "etc/machine-id").write_text("")  # systemd makes one at first boot


if __name__ == "__main__":
    for name, path in ensure_guest().items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
