"""L4Re from the pinned sources boots in QEMU: Fiasco (arm64-virt-el2), sigma0, moe and hello in
qemu-system-aarch64's virt machine (l4re/qemu_boot.py), from the image `scons l4re` builds
(l4re/l4re_build.py). Issue 21, stage 1; skipped unless --l4re (./run test --l4re)."""
from __future__ import annotations

import shutil
import sys

import pytest
from support.targets import ROOT

sys.path.insert(0, str(ROOT / "l4re"))
import l4re_build  # noqa: E402
import qemu_boot  # noqa: E402

pytestmark = pytest.mark.l4re

BOOT_TIMEOUT = 180  # seconds; under a second measured here (docs/l4re.md): generous for a busy machine


@pytest.fixture(scope="module")
def image():
    if shutil.which(qemu_boot.QEMU) is None:
        pytest.fail(f"{qemu_boot.QEMU} is missing (package qemu-system-arm, tools/apt-packages.txt)")
    found = l4re_build.cached_image()
    if found is None:
        pytest.fail(f"no L4Re image for key {l4re_build.key()} in {l4re_build.cache_dir()}: "
                    "./run test --l4re builds it before the tests ('scons l4re')")
    return found


def test_hello_world_on_the_serial_console(image):
    seconds, console = qemu_boot.boot_until(image, "Hello World!", BOOT_TIMEOUT)
    assert seconds is not None, f"no 'Hello World!' within {BOOT_TIMEOUT} s; console:\n{console[-4000:]}"
    # the console shows the stack that got there: bootstrap starting Fiasco, then moe starting hello
    assert "Starting kernel fiasco" in console and "MOE: Starting: rom/hello" in console, console[-4000:]
    print(f"Hello World! after {seconds:.1f} s")
