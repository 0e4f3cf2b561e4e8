"""Zero-copy AES jobs of the C library (wvds_aes_job_*) against the real crypto_service, for both
architectures (aarch64 under qemu-user): tests/service/c/aes_jobs.c checks round trips in both
directions, several jobs in flight, misuse and failures; its sealed output is checked here with
pyca/cryptography."""
import json
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from support.service import clib_path
from support.targets import ARCHS, ROOT, Target

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()


@pytest.mark.parametrize("arch", ARCHS)
def test_zero_copy_jobs_against_the_real_service(service, arch, tmp_path):
    lib = clib_path(Target(arch))
    program = tmp_path / "aes_jobs"
    subprocess.run([Target(arch).compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-o", str(program),
                    str(ROOT / "tests" / "service" / "c" / "aes_jobs.c"), f"-I{ROOT / 'src' / 'c' / 'include'}",
                    f"-I{ROOT / 'tests' / 'c'}",
                    f"-L{lib.parent}", "-ll4re_crypto_service", f"-Wl,-rpath,{lib.parent}"], check=True)
    r = Target(arch).run(program, service.socket, check=False, timeout=300)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    assert r.returncode == 0 and out.splitlines()[-1:] == ["PASS"], out + err
    checked = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(checked) == 2
    for c in checked:
        sealed = bytes.fromhex(c["sealed"])
        assert AESGCM(bytes(range(32))).decrypt(sealed[:12], sealed[12:], bytes.fromhex(c["aad"])) == \
            bytes.fromhex(c["plaintext"])
