"""Ending the helper processes tests start (EST server, swtpm, TLS peers)."""
from __future__ import annotations

import subprocess


def terminate(proc: subprocess.Popen | None, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reaps it. Nothing if it has already exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
