"""The boot image of the Linux VM under L4Re: Fiasco, io and uvmm running the QEMU system test's guest.

    python l4re/vm_image.py          # build (or find) the image; needs `scons l4re` and `scons qemu-guest`

Entry `wvds-vm` of l4re/vm/modules.list (docs/l4re.md, "The delivery in an L4Re VM"): Fiasco, sigma0,
moe, ned, io and uvmm from the cached L4Re build (l4re_build.py), the gateway task (l4re/gateway/, built
here out of tree with the L4Re build system), the files of l4re/vm/ (ned's start script, io's hardware
and vBus, the VM's device tree, compiled here with dtc) and Debian's arm64 kernel and initrd of the QEMU
guest (qemu/guest_image.py). The guest's root file system is not in the image:
QEMU's virtio disk is passed through to the VM. Making the image is a `make elfimage` of a second or
two, the gateway a few seconds; cached beside the L4Re build in vm-<key>/, key = the L4Re build's key, the
guest's key, the files of l4re/vm/ and l4re/gateway/, wvds_crypto.h and the kernel command line.
"""
from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "qemu")]
import guest_image  # noqa: E402
import l4re_build  # noqa: E402

VM = HERE / "vm"
GATEWAY = HERE / "gateway"
GATEWAY_SOURCES = ("Makefile", "main.cc")
HEADER = HERE.parent / "src" / "c" / "include" / "wvds_crypto.h"  # the delivery's header: the wire constants
ENTRY = "wvds-vm"
IMAGE = f"bootstrap_{ENTRY}.elf"
SOURCES = ("modules.list", "wvds-vm.ned", "wvds-vm.io", "vm_hw.vbus", "wvds-vm.dts")


def key(guest_dir: Path) -> str:
    h = hashlib.sha256()
    for part in (l4re_build.key().encode(), guest_dir.name.encode(), guest_image.KERNEL_CMDLINE.encode(),
                 *((VM / name).read_bytes() for name in SOURCES),
                 *((GATEWAY / name).read_bytes() for name in GATEWAY_SOURCES), HEADER.read_bytes()):
        h.update(part + b"\0")
    return h.hexdigest()[:16]


def build_gateway(build: Path, out: Path, log) -> Path:
    """l4re/gateway/ compiled against the cached L4Re build (from a copy under out/, so the build
    system's per-package directories stay inside the cache); the program where the build installs it."""
    src = out / "gateway"
    shutil.copytree(GATEWAY, src)
    shutil.copy2(HEADER, src / HEADER.name)  # main.cc includes it from its own directory
    l4re_build.run_logged(["make", "-C", str(src), f"O={build / 'l4'}", f"L4DIR={build / 'src' / 'l4'}",
                           f"CROSS_COMPILE={l4re_build.CROSS_COMPILE}"], log, "gateway")
    return build / "l4" / "bin" / "arm64_armv8a" / "l4f" / "wvds-gateway"


def ensure_vm_image(guest: dict[str, Path], log=None) -> Path:
    """The image for this guest, made once per key(); the L4Re build must exist (it is not started here:
    it takes half an hour, `scons l4re` does it)."""
    log = log or sys.stderr
    if l4re_build.cached_image() is None:
        raise RuntimeError(f"no L4Re build for key {l4re_build.key()} in {l4re_build.cache_dir()}: "
                           "run 'scons l4re' (./run test --l4re does)")
    build = l4re_build.cache_dir() / l4re_build.key()
    out = build / f"vm-{key(guest['kernel'].parent)}"
    image = out / IMAGE
    with open(build.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the L4Re build directory's images/ is shared
        if (out / ".complete").exists():
            return image
        shutil.rmtree(out, ignore_errors=True)
        stage = out / "modules"
        stage.mkdir(parents=True)
        for name in ("wvds-vm.io", "vm_hw.vbus"):
            shutil.copyfile(VM / name, stage / name)
        ned = (VM / "wvds-vm.ned").read_text().replace("@KERNEL_CMDLINE@", guest_image.KERNEL_CMDLINE)
        (stage / "wvds-vm.ned").write_text(ned)
        subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(stage / "wvds-vm.dtb"),
                        str(VM / "wvds-vm.dts")], check=True, stdout=log, stderr=log)
        for name in ("kernel", "initrd"):  # module names are the files' names: vmlinuz, initrd.img
            (stage / guest[name].name).symlink_to(guest[name])
        stage.joinpath("wvds-gateway").symlink_to(build_gateway(build, out, log))
        search = ":".join(str(p) for p in (build / "fiasco", stage, build / "l4" / "assets"))
        l4re_build.run_logged(["make", "-C", str(build / "l4"), "elfimage", f"E={ENTRY}",
                               f"MODULES_LIST={VM / 'modules.list'}", f"MODULE_SEARCH_PATH={search}",
                               f"CROSS_COMPILE={l4re_build.CROSS_COMPILE}"], log, "vm image")
        shutil.move(build / "l4" / "images" / IMAGE, image)
        shutil.rmtree(stage)
        shutil.rmtree(out / "gateway")
        (out / ".complete").touch()
    for old in build.glob("vm-*"):  # images of earlier guests or configurations (about 75 MB each)
        if old != out:
            shutil.rmtree(old, ignore_errors=True)
    return image


if __name__ == "__main__":
    found = guest_image.cached_guest()
    if found is None:
        sys.exit("the QEMU guest is not built: run 'scons qemu-guest' (as root)")
    path = ensure_vm_image(found)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
