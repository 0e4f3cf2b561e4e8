"""examples/: the OEM gateway builds with its Makefile against a delivery's layout (include/,
lib/<arch>/) for each architecture. Its whole story runs against the real service in
tests/service/test_c_example.py."""
import shutil
import subprocess

from support.clib import C_SRC, LIB_NAME
from support.targets import ROOT, Target

EXAMPLES = ROOT / "examples"


def unpacked_delivery(tmp_path, arch, clib):
    """The parts of the delivery tarball the example needs, laid out as shipped."""
    top = tmp_path / "delivery"
    (top / "include").mkdir(parents=True)
    (top / "lib" / arch).mkdir(parents=True)
    shutil.copy(C_SRC / "include" / "wvds_crypto.h", top / "include")
    shutil.copy(clib, top / "lib" / arch / LIB_NAME)
    shutil.copytree(EXAMPLES, top / "examples")
    shutil.copy(ROOT / "toolchains" / "hardening.mk", top / "examples")  # as the delivery ships it
    return top


def make_example(tmp_path, arch, clib):
    top = unpacked_delivery(tmp_path, arch, clib)
    r = subprocess.run(["make", "-C", str(top / "examples"), f"ARCH={arch}", f"CC={Target(arch).compiler}",
                        "CFLAGS=-O2 -Wall -Wextra -Werror -fPIE"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return top / "examples" / "oem_gateway"


def test_gateway_fails_cleanly_without_a_service(arch, clib, runner, tmp_path):
    program = make_example(tmp_path, arch, clib)
    r = runner.run(program, env=runner.env(WVDS_SOCKET=str(tmp_path / "none.sock")), check=False)
    assert r.returncode == 1 and b"FAILED: connect: WVDS_ERR_CONNECT" in r.stderr
