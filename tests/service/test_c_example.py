"""The OEM example gateway (C library) against the real crypto_service, for both
architectures: the aarch64 build runs under qemu-user and talks to the service
through the same shared memory."""
import pytest

from support.targets import ARCHS, BUILD, Target

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()


@pytest.mark.parametrize("arch", ARCHS)
def test_oem_gateway_against_the_real_service(service, arch):
    program = BUILD / arch / "clib" / "oem_gateway"
    if not program.exists():
        pytest.fail(f"{program} missing: run 'scons' (./run test does)")
    t = Target(arch)
    r = t.run(program, service.socket, check=False, timeout=300)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    assert "signature verified (tampered copy rejected)" in out
    assert "zero-copy: " in out and "decrypted back" in out
    assert "oem_gateway: all steps succeeded" in out
    assert "client connected" in service.log()
