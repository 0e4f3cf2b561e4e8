"""Start the real crypto_service for a test: from source, or a native binary (support.binaries).

The service runs as a child process with our OpenSSL 3.6.3 (FIPS config made by
`openssl fipsinstall` for this machine) and our C library; tests talk to it
through the real Unix socket and shared memory.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from support.binaries import SOURCE, Programs
from support.targets import ROOT, Target

CLIB = "libl4re_crypto_service.so"


def clib_path(target: Target) -> Path:
    return ROOT / "build" / target.arch / "clib" / CLIB


def status_of(call, *args):
    """The status a client call ends with: SUCCESS, or the one of the ServiceStatusError it raises."""
    from wvds.client import ServiceStatusError
    from wvds.protocol.constants import Status
    try:
        call(*args)
    except ServiceStatusError as e:
        return e.status
    return Status.SUCCESS


def file_keystore(workdir: Path, directory: Path | None = None) -> dict:
    """keystore settings for the file backend with a fresh 32-byte device secret in workdir."""
    secret = workdir / "device.secret"
    if not secret.exists():
        secret.write_bytes(os.urandom(32))
        secret.chmod(0o600)
    return {"backend": "file", "directory": str(directory or workdir / "keystore"), "secret_file": str(secret)}


def base_config(workdir: Path, **overrides) -> dict:
    cfg = {
        "socket": {"path": str(workdir / "crypto.sock"), "mode": "0660"},
        "access": {"allow_uids": [os.getuid()]},
        "limits": {"rate_limit": {"requests_per_second": 0}},
        "keystore": {"backend": "memory"},
        "log": {"level": "debug"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


class ServiceProcess:
    """`with ServiceProcess(target, fips_env, workdir, config) as svc:` — svc.socket is ready to use."""

    def __init__(self, target: Target, fips_env: dict[str, str], workdir: Path, config: dict,
                 preexec=None, extra_env: dict[str, str] | None = None, programs: Programs = SOURCE):
        self.programs = programs  # the sources, or the binaries under test (the `programs` fixture)
        if self.programs.binary:
            target = self.programs.target
        self.target, self.workdir, self.config = target, workdir, config
        self.socket = config["socket"]["path"]
        self.config_path = workdir / "config.json"
        self.log_path = workdir / "service.log"
        self.env = dict(self.programs.env(dict(fips_env, WVDS_CLIENT_LIB=str(clib_path(target)))),
                        **(extra_env or {}))
        self.preexec = preexec
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return self.programs.argv("wvds_crypto_service", "--config", self.config_path)

    def start(self, timeout: float | None = None) -> "ServiceProcess":
        if timeout is None:  # the FIPS self-tests alone take tens of seconds under qemu-user on a busy machine
            timeout = 30 if self.target.native else 240
        self.config_path.write_text(json.dumps(self.config, indent=2))
        self._log = open(self.log_path, "ab")
        start = self._log.tell()  # a restart appends: only this run's lines count for readiness
        self.proc = subprocess.Popen(self.command(), env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=self.preexec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}:\n{self.log()}")
            if "crypto_service ready" in self.log()[start:]:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"service not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"service did not stop within {timeout}s after signal {sig}:\n{self.log()}") from None
        self._log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def __enter__(self) -> "ServiceProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class RestartableService(ServiceProcess):
    """ServiceProcess whose start() can be repeated: each start gets a fresh log (the old one is kept aside),
    so "ready" means this run is ready, and `log()` shows this run only."""

    runs = 0

    def start(self, timeout: float = 30) -> "RestartableService":
        if self.log_path.exists():
            self.runs += 1
            self.log_path.rename(self.log_path.with_name(f"service.{self.runs}.log"))
        return super().start(timeout)


def start_fails(svc: ServiceProcess, *messages: str) -> str:
    """The service refuses to start, saying "cannot start" and each of `messages`; its output."""
    import pytest
    with pytest.raises(RuntimeError) as e:
        svc.start()
    text = str(e.value)
    assert "cannot start" in text, text
    for m in messages:
        assert m in text, text
    return text
