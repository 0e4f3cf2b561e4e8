#!/usr/bin/env python3
"""crypto_service's resident memory: idle, and with 1, 8 and 64 connected clients.

    python bench/memory.py                         # the x86_64 binary and the sources
    python bench/memory.py --programs source,x86_64-binary,aarch64-binary --clients 1,8,64
    python bench/memory.py --keystore tpm          # the TPM key store (starts its own swtpm)

For each program kind it starts its own service (FIPS provider, the file key store with a device
secret - or the TPM one against swtpm -, rate limit off, log level info) and reads VmRSS and its
parts from /proc/PID/status: after start-up with no client, then with N clients connected at once,
each having made one AES-256-GCM encryption (so its session, slot region and key exist). The
aarch64 binary runs under qemu-user: its VmRSS is the emulator's (QEMU's code cache and
translation structures included), so it is printed but marked "emulated", not comparable.
Machine and kernel are printed with the table.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]


def rollup(pid: int) -> dict[str, int]:
    """KiB: VmRSS and its anonymous / file-backed / shared-memory parts (/proc/PID/status)."""
    out = {}
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(("VmRSS", "RssAnon", "RssFile", "RssShmem")):
            k, v = line.split(":")
            out[k] = int(v.split()[0])
    return out


def measure(programs, keystore: str, levels: list[int], work: Path) -> list[tuple[str, dict]]:
    from support.fips import fipsinstall
    from support.service import ServiceProcess, base_config
    from support.tpm import Swtpm
    from wvds.client import Client
    from wvds.protocol.constants import Algorithm

    env = fipsinstall(programs.target, work)
    tpm = None
    if keystore == "file":
        secret = work / "device.secret"
        secret.write_bytes(os.urandom(32))
        secret.chmod(0o600)
        store = {"backend": "file", "directory": str(work / "keystore"), "secret_file": str(secret)}
    else:
        tpm = Swtpm(work / "swtpm").start()
        store = {"backend": "tpm", "directory": str(work / "keystore"), "tcti": tpm.tcti}
    cfg = base_config(work, keystore=store, log={"level": "info"},
                      limits={"rate_limit": {"requests_per_second": 0}, "max_clients": max(levels) + 8})
    rows = []
    try:
        with ServiceProcess(programs.target, env, work, cfg, programs=programs) as svc:
            pid = svc.proc.pid
            time.sleep(1.0)
            rows.append(("idle, no client", rollup(pid)))
            clients = []
            try:
                for n in levels:
                    while len(clients) < n:
                        c = Client(svc.socket, timeout_ms=120_000)
                        key = c.generate_key(Algorithm.AES_256_GCM).key_id
                        c.encrypt(key, b"x" * 64)
                        clients.append(c)
                    time.sleep(0.5)
                    rows.append((f"{n} client{'s' if n > 1 else ''} connected", rollup(pid)))
            finally:
                for c in clients:
                    c.close()
    finally:
        if tpm:
            tpm.stop()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description="crypto_service resident memory at 0/1/8/64 clients")
    ap.add_argument("--programs", default="source,x86_64-binary")
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--keystore", choices=("file", "tpm"), default="file")
    args = ap.parse_args()
    from support.binaries import SOURCE, binaries
    kinds = {"source": SOURCE, "x86_64-binary": binaries("x86_64"), "aarch64-binary": binaries("aarch64")}
    levels = [int(x) for x in args.clients.split(",")]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.machine())
    print(f"machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}; key store: {args.keystore}")
    print("| programs | state | VmRSS MiB | anon MiB | file MiB | shmem MiB |\n|---|---|---|---|---|---|")
    for name in args.programs.split(","):
        programs = kinds[name]
        programs.check_built()
        with tempfile.TemporaryDirectory(prefix="wvds-mem-") as tmp:
            for state, r in measure(programs, args.keystore, levels, Path(tmp)):
                label = name + (" (emulated: qemu-user's RSS)" if name == "aarch64-binary" else "")
                print(f"| {label} | {state} | {r['VmRSS'] / 1024:.1f} | {r['RssAnon'] / 1024:.1f} | "
                      f"{r['RssFile'] / 1024:.1f} | {r['RssShmem'] / 1024:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
