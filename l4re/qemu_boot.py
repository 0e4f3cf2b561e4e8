"""Boot an L4Re image (l4re_build) in qemu-system-aarch64 and watch its serial console.

    python l4re/qemu_boot.py [IMAGE]   # boots the cached hello image; prints the seconds to "Hello World!"

The machine is QEMU's arm64 `virt` with EL2 (Fiasco's arm64-virt-el2 runs as hypervisor) and a
Cortex-A57; -nic none because QEMU stops on the missing ROM of its default network card otherwise.
"""
from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

QEMU = "qemu-system-aarch64"
MACHINE = ["-M", "virt,virtualization=true", "-cpu", "cortex-a57", "-m", "1024", "-nic", "none",
           "-display", "none", "-monitor", "none", "-serial", "stdio"]


def command(image: Path) -> list[str]:
    return [QEMU, *MACHINE, "-kernel", str(image)]


def boot_until(image: Path, expect: str, timeout: float) -> tuple[float | None, str]:
    """Seconds from QEMU's start until `expect` appears on the console (None after timeout), and the console.
    QEMU is stopped either way: the L4Re image never powers off by itself."""
    started = time.monotonic()
    console = b""
    with subprocess.Popen(command(image), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as qemu:
        try:
            os.set_blocking(qemu.stdout.fileno(), False)
            with selectors.DefaultSelector() as sel:
                sel.register(qemu.stdout, selectors.EVENT_READ)
                while (left := timeout - (time.monotonic() - started)) > 0:
                    if not sel.select(min(left, 1.0)):
                        continue
                    chunk = qemu.stdout.read()
                    if chunk is None:  # nothing after all
                        continue
                    if not chunk:  # QEMU exited
                        break
                    console += chunk
                    if expect.encode() in console:
                        return time.monotonic() - started, console.decode(errors="replace")
        finally:
            qemu.kill()
    return None, console.decode(errors="replace")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import l4re_build
    img = Path(sys.argv[1]) if len(sys.argv) > 1 else l4re_build.cached_image()
    if img is None:
        sys.exit("no cached L4Re image: run `scons l4re` first")
    seconds, text = boot_until(img, "Hello World!", 120)
    print(text)
    print(f"Hello World! after {seconds:.1f} s" if seconds is not None else "no Hello World! within 120 s")
    sys.exit(0 if seconds is not None else 1)
