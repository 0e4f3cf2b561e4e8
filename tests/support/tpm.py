"""A real software TPM 2.0 for tests: swtpm (libtpms) in socket mode, started and stopped by the test.

The TPM speaks the TCG TPM2 command protocol on a TCP port on 127.0.0.1; its
control channel (power, shutdown) on the next one. tpm2-tss reaches it with
the TCTI "swtpm:host=127.0.0.1,port=N". State lives in a temp directory, so a
test can stop and restart the same TPM (keys sealed to it stay valid) or start a
fresh one (a different TPM: nothing sealed elsewhere opens).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from support.processes import terminate


def _free_port_pair() -> int:
    """A port p with p and p+1 free on 127.0.0.1 (swtpm: server on p, control on p+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of TCP ports on 127.0.0.1")


class Swtpm:
    """`with Swtpm(state_dir) as tpm:` — tpm.tcti is the TCTI string for the service's config."""

    def __init__(self, state_dir: Path):
        if shutil.which("swtpm") is None:
            raise RuntimeError("swtpm is not installed: run tools/bootstrap.sh (tools/apt-packages.txt lists it)")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self, timeout: float = 10) -> "Swtpm":
        self.port = _free_port_pair()
        log = open(self.state_dir / "swtpm.log", "ab")
        self.proc = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={self.state_dir}",
             "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
             "--ctrl", f"type=tcp,port={self.port + 1},bindaddr=127.0.0.1",
             "--flags", "not-need-init,startup-clear"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"swtpm exited with {self.proc.returncode}: "
                                   f"{(self.state_dir / 'swtpm.log').read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port + 1), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("swtpm did not open its ports")

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def esapi(self):
        """An ESAPI context on this TPM from the test process (e.g. to extend a PCR); close() it after use."""
        from tpm2_pytss import ESAPI, TCTILdr
        return ESAPI(TCTILdr("swtpm", f"host=127.0.0.1,port={self.port}"))

    def extend_pcr(self, index: int, data: bytes = b"\x42" * 32) -> None:
        from tpm2_pytss.constants import ESYS_TR, TPM2_ALG
        from tpm2_pytss.types import TPML_DIGEST_VALUES, TPMT_HA, TPMU_HA
        ctx = self.esapi()
        try:
            ctx.pcr_extend(ESYS_TR.parse(f"pcr{index}"),
                           TPML_DIGEST_VALUES([TPMT_HA(hashAlg=TPM2_ALG.SHA256, digest=TPMU_HA(sha256=data))]))
        finally:
            ctx.close()

    def __enter__(self) -> "Swtpm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
