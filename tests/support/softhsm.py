"""A real PKCS#11 token for tests: SoftHSMv2 with its token directory in a temp dir.

`softhsm2-util --init-token` creates the token; SOFTHSM2_CONF (in `env`) points
the library at that directory, so tests never touch the machine's own tokens.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# The token the tests initialise and the PIN the service reads from its environment (pin_env).
TOKEN_LABEL = "wvds-test"
PIN = "4711-test-pin"
MODULE_CANDIDATES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                     "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so")


def module_path() -> str:
    for path in MODULE_CANDIDATES:
        if os.path.exists(path):
            return path
    raise RuntimeError("SoftHSMv2 is not installed: run tools/bootstrap.sh (tools/apt-packages.txt lists softhsm2)")


class SoftHsm:
    """Token directory + config under `workdir`; `init_token(label, pin)` adds a token."""

    def __init__(self, workdir: Path):
        if shutil.which("softhsm2-util") is None:
            raise RuntimeError("softhsm2-util is not installed: run tools/bootstrap.sh")
        self.workdir = Path(workdir)
        self.tokens = self.workdir / "tokens"
        self.tokens.mkdir(parents=True, exist_ok=True)
        self.conf = self.workdir / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {self.tokens}\nobjectstore.backend = file\n"
                             "log.level = ERROR\nslots.removable = false\n")
        self.module = module_path()

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    def init_token(self, label: str, pin: str, so_pin: str = "so-pin-1234") -> None:
        r = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", so_pin,
                            "--pin", pin], env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"softhsm2-util --init-token failed: {r.stdout}{r.stderr}")

    def delete_token(self, label: str) -> None:
        r = subprocess.run(["softhsm2-util", "--delete-token", "--token", label], env={**os.environ, **self.env},
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"softhsm2-util --delete-token failed: {r.stdout}{r.stderr}")
