"""SLH-DSA (FIPS 205) in crypto_service: sizes and speeds of the twelve sets, service against in-process.

    python bench/slhdsa_bench.py [--seconds 1] [--json out.json]

For each set: public key and signature size, key generation, signing and verification per second
through the service (Python client; the operations take milliseconds, the round trip microseconds)
and with wvds.ossl over the same OpenSSL 3.6.3 FIPS provider in this process, measured in the same run.
Each figure runs for --seconds (at least 3 operations). The "s" sets make small signatures slowly, the
"f" sets large ones fast: the table is there so an OEM can choose.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT / "src")]

from run_bench import machine  # noqa: E402
from support.fips import fipsinstall  # noqa: E402
from support.service import ServiceProcess, base_config  # noqa: E402
from support.targets import HOST  # noqa: E402
from wvds.client import Client  # noqa: E402
from wvds.crypto_service.keys import OSSL_NAME  # noqa: E402
from wvds.protocol.constants import SLH_DSA  # noqa: E402


def rate(op, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        op()
        n += 1
    return n / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="wvds-slh-") as tmp:
        work = Path(tmp)
        env = fipsinstall(HOST, work)
        os.environ.update(env, WVDS_LIBCRYPTO=str(HOST.openssl_root / "lib" / "libcrypto.so.3"))
        from wvds import ossl
        ossl.load()
        cfg = base_config(work, limits={"rate_limit": {"requests_per_second": 0}, "max_keys_per_client": 1_000_000},
                          log={"level": "info"})
        with ServiceProcess(HOST, env, work, cfg) as svc, Client(svc.socket, timeout_ms=60000) as c:
            for alg in SLH_DSA:
                name, msg = OSSL_NAME[alg], b"\x5a" * 64
                key = c.generate_key(alg)
                sig = c.slhdsa_sign(key.key_id, msg)
                local = ossl.generate_key(name)
                local_pub = ossl.key_from_public(name, local.public_bytes())
                local_sig = ossl.slhdsa_sign(local, msg)
                rows.append({
                    "set": name, "public_key": len(key.public_key), "signature": len(sig),
                    "keygen_per_s": {"service": rate(lambda: c.delete_key(c.generate_key(alg).key_id), args.seconds),
                                     "inprocess": rate(lambda: ossl.generate_key(name), args.seconds)},
                    "sign_per_s": {"service": rate(lambda: c.slhdsa_sign(key.key_id, msg), args.seconds),
                                   "inprocess": rate(lambda: ossl.slhdsa_sign(local, msg), args.seconds)},
                    "verify_per_s": {"service": rate(lambda: c.slhdsa_verify(key.key_id, msg, sig), args.seconds),
                                     "inprocess": rate(lambda: ossl.slhdsa_verify(local_pub, msg, local_sig),
                                                       args.seconds)},
                })
    print(f"machine: {machine()}")
    print("SLH-DSA, 64-byte message; service (Python client) / in-process wvds.ossl, per second, same run\n")
    print(f"{'set':<20} {'pk B':>5} {'sig B':>6} {'keygen/s':>17} {'sign/s':>17} {'verify/s':>17}")
    for r in rows:
        cells = [f"{r[k]['service']:7.1f} / {r[k]['inprocess']:7.1f}" for k in ("keygen_per_s", "sign_per_s",
                                                                                 "verify_per_s")]
        print(f"{r['set']:<20} {r['public_key']:>5} {r['signature']:>6} " + " ".join(f"{x:>17}" for x in cells))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
