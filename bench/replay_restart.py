"""How long crypto_service takes to start with replay windows in use (docs/replay.md).

    python bench/replay_restart.py [--keys 64] [--full 2] [--json out.json]

A file key store with `--keys` AES keys, each with a few messages decrypted, of which `--full` keys have
a full window (1 048 576 messages sealed and decrypted once each, through the C client library), is
restarted three times; the same number of REPLAYABLE keys (no window) is the baseline. Start time is
from the process start to its socket answering STATUS: it includes the FIPS self-tests, which are the
same in both. The windows are mapped, not read, so their fill should not show.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT / "src")]

from run_bench import build, machine  # noqa: E402
from support.fips import fipsinstall  # noqa: E402
from support.service import ServiceProcess, base_config  # noqa: E402
from support.targets import HOST  # noqa: E402
from wvds.client import Client  # noqa: E402
from wvds.protocol.constants import Algorithm, KeyUsage  # noqa: E402


def start_times(work: Path, env: dict, cfg: dict, runs: int = 3) -> list[float]:
    times = []
    for i in range(runs):
        run = work / f"run{i}"
        run.mkdir()
        t = time.perf_counter()
        with ServiceProcess(HOST, env, run, {**cfg, "socket": {"path": str(run / "crypto.sock"), "mode": "0660"}}) \
                as svc, Client(svc.socket) as c:
            c.status()
            times.append(time.perf_counter() - t)
    return times


def store(work: Path, name: str, keys: int, usage: int, full: int, env: dict, exe: Path) -> tuple[dict, int]:
    secret = work / f"{name}.secret"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o600)
    cfg = base_config(work, keystore={"backend": "file", "directory": str(work / name), "secret_file": str(secret)},
                      limits={"rate_limit": {"requests_per_second": 0}, "max_keys_per_client": 100_000},
                      log={"level": "info"})
    setup = work / f"setup-{name}"
    setup.mkdir()
    with ServiceProcess(HOST, env, setup, {**cfg, "socket": {"path": str(setup / "s.sock"), "mode": "0660"}}) as svc:
        with Client(svc.socket) as c:
            for _ in range(keys):
                k = c.generate_key(Algorithm.AES_256_GCM, usage).key_id
                for s in [c.encrypt(k, b"m") for _ in range(10)]:
                    c.decrypt(k, s)
        if full:
            subprocess.run([exe, svc.socket, "fill", str(full), str(1 << 20)], env=env, check=True,
                           capture_output=True)
    size = sum(p.stat().st_blocks * 512 for p in (work / name / "replay").glob("*.win"))
    return cfg, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=64)
    ap.add_argument("--full", type=int, default=2, help="keys whose window is filled with 2^20 decryptions")
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wvds-replay-") as tmp:
        work = Path(tmp)
        env = fipsinstall(HOST, work)
        exe = build(work)
        t = time.perf_counter()
        protected, disk = store(work, "protected", args.keys, 0, args.full, env, exe)
        filled = time.perf_counter() - t
        replayable, _ = store(work, "replayable", args.keys + args.full, KeyUsage.REPLAYABLE, 0, env, exe)
        on, off = start_times(work / "protected", env, protected), start_times(work / "replayable", env, replayable)
    r = {"keys": args.keys + args.full, "full_windows": args.full, "window_files_bytes": disk,
         "start_s_protected": on, "start_s_replayable": off, "setup_s": filled}
    print(f"machine: {machine()}")
    print(f"{r['keys']} AES keys ({args.full} with full windows of 2^20 counters), window files on disk {disk / 2**20:.1f} MiB")
    print(f"start to first answer, median of 3: protected {statistics.median(on) * 1000:.0f} ms, "
          f"REPLAYABLE {statistics.median(off) * 1000:.0f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), **r}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
