"""examples/: the OEM gateway builds with its Makefile against a delivery's layout (include/,
lib/<arch>/) for each architecture and runs its whole story against a service."""
import shutil
import subprocess

from conftest import C_SRC, COMPILER, LIB_NAME, ROOT

EXAMPLES = ROOT / "examples"


def unpacked_delivery(tmp_path, arch, clib):
    """The parts of the delivery tarball the example needs, laid out as shipped."""
    top = tmp_path / "delivery"
    (top / "include").mkdir(parents=True)
    (top / "lib" / arch).mkdir(parents=True)
    shutil.copy(C_SRC / "include" / "wvds_crypto.h", top / "include")
    shutil.copy(clib, top / "lib" / arch / LIB_NAME)
    shutil.copytree(EXAMPLES, top / "examples")
    return top


def make_example(tmp_path, arch, clib):
    top = unpacked_delivery(tmp_path, arch, clib)
    r = subprocess.run(["make", "-C", str(top / "examples"), f"ARCH={arch}", f"CC={COMPILER[arch]}",
                        "CFLAGS=-O2 -Wall -Wextra -Werror -fPIE"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return top / "examples" / "oem_gateway"


def test_gateway_story_against_a_service(arch, clib, runner, fake_service, tmp_path):
    program = make_example(tmp_path, arch, clib)
    r = runner.run(program, fake_service.path, check=False, timeout=300)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    assert "signature verified (tampered copy rejected)" in out and "t=9 temp=23.75C" in out
    assert "oem_gateway: all steps succeeded" in out
    assert fake_service.errors == []
    assert fake_service.crypto.keys == {}  # every key it made was deleted again


def test_gateway_fails_cleanly_without_a_service(arch, clib, runner, tmp_path):
    program = make_example(tmp_path, arch, clib)
    r = runner.run(program, env=runner.env(WVDS_SOCKET=str(tmp_path / "none.sock")), check=False)
    assert r.returncode == 1 and b"FAILED: connect: WVDS_ERR_CONNECT" in r.stderr
