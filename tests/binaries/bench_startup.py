"""Start-up time of our programs: from source vs the native binaries (aarch64 under qemu-user).

    python tests/binaries/bench_startup.py [--runs 5] [--arch x86_64 --arch aarch64]

Three measurements each, median of --runs:
  help     `wvdsctl --help`: interpreter and imports only
  version  `wvds_crypto_service --version`: plus loading OpenSSL and the FIPS provider (its self-tests)
  ready    wvds_crypto_service from exec to "crypto_service ready" (config, FIPS, key store, socket)
Run it on a quiet machine; the aarch64 numbers are emulation, not device, speed.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "src")]

from support.binaries import SOURCE, binaries  # noqa: E402
from support.fips import fipsinstall  # noqa: E402
from support.service import ServiceProcess, base_config  # noqa: E402
from support.targets import HOST  # noqa: E402


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(programs, fips_env, runs: int, work: Path) -> dict[str, float]:
    def run(*argv):
        subprocess.run(programs.argv(*argv), env=programs.env(fips_env), check=True, capture_output=True, timeout=300)

    def ready():
        d = Path(tempfile.mkdtemp(dir=work))
        svc = ServiceProcess(HOST, fips_env, d, base_config(d, log={"level": "info"}), programs=programs)
        svc.start(timeout=300)
        svc.stop()

    out = {}
    for name, fn in (("help", lambda: run("wvdsctl", "--help")),
                     ("version", lambda: run("wvds_crypto_service", "--version")), ("ready", ready)):
        fn()  # warm the page cache
        out[name] = statistics.median(timed(fn) for _ in range(runs))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--arch", action="append", choices=("x86_64", "aarch64"))
    args = ap.parse_args()
    rows = [SOURCE] + [binaries(a) for a in (args.arch or ["x86_64", "aarch64"])]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"{'programs':16} {'help':>8} {'version':>8} {'ready':>8}   (seconds, median of {args.runs})")
        for programs in rows:
            programs.check_built()
            fips_env = fipsinstall(programs.target, Path(tempfile.mkdtemp(dir=work)))
            m = measure(programs, fips_env, args.runs, work)
            print(f"{programs.name:16} {m['help']:8.3f} {m['version']:8.3f} {m['ready']:8.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
