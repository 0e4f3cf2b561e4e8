"""Benchmark crypto_service against in-process OpenSSL on this machine.

    python bench/run_bench.py [--seconds 2] [--json out.json] [--programs source|x86_64-binary]

Builds bench_service.c against the C client library and our OpenSSL, starts a
crypto_service (from source or the x86_64 Nuitka binary, FIPS mode, rate limit off), runs the measurements
and prints them with the ratios and the machine they were taken on. Run it on an
otherwise idle machine: there are only 2 cores here and the service, the client
and the in-process baseline share them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from support.binaries import SOURCE, binaries  # noqa: E402
from support.fips import fipsinstall  # noqa: E402
from support.service import ServiceProcess, base_config, clib_path, file_keystore  # noqa: E402
from support.targets import HOST  # noqa: E402


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.machine())
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"


def build(work: Path) -> Path:
    ossl = HOST.openssl_root
    exe = work / "bench_service"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", exe, ROOT / "bench" / "bench_service.c",
                    "-I", ROOT / "src" / "c" / "include", "-I", ossl / "include",
                    "-L", clib_path(HOST).parent, "-L", ossl / "lib", "-l", "l4re_crypto_service", "-lcrypto",
                    "-lpthread", f"-Wl,-rpath,{clib_path(HOST).parent}:{ossl / 'lib'}"], check=True)
    return exe


def compare(label: str, figures: dict, unit: str) -> None:
    """One service-vs-in-process line with its ratio."""
    service, inprocess = figures["service"], figures["inprocess"]
    print(f"{label:<50} {service:9.1f} {unit} vs {inprocess:9.1f} {unit}   ratio {service / inprocess:.0%}")


def aes_jobs_report(r: dict) -> int:
    print(f"AES-GCM {r['bytes']} B encryptions, MB/s, and the ratio to in-process EVP of the same run "
          f"({r['in_flight']} jobs in flight):")
    for i, run in enumerate(r["runs"], 1):
        base = run["inprocess"]
        cells = "  ".join(f"{k} {v:8.1f} ({v / base:.0%})" for k, v in run.items() if k != "inprocess")
        print(f"  run {i}: in-process {base:8.1f}  {cells}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="duration of each throughput test")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--keystore", choices=("memory", "file"), default="memory",
                    help="file: replay windows are files and counter reservations fsynced, as on a device (every key "
                         "creation is an fsync too: the ML-KEM keygen figure then measures the disk)")
    ap.add_argument("--replay-sync", action="store_true",
                    help="limits.replay_sync: flush each replay window update before answering (implies --keystore file)")
    ap.add_argument("--programs", choices=("source", "x86_64-binary"), default="source",
                    help="the service from source, or the compiled x86_64 program (build/x86_64/bin)")
    ap.add_argument("--aes-jobs", action="store_true",
                    help="only the 64 KiB AES figures, twice: in-process, zero-copy jobs with and without the "
                         "client's copy into shared memory, one at a time (docs/performance.md)")
    args = ap.parse_args()
    programs = SOURCE if args.programs == "source" else binaries("x86_64")
    programs.check_built()
    if args.replay_sync:
        args.keystore = "file"
    with tempfile.TemporaryDirectory(prefix="wvds-bench-") as tmp:
        work = Path(tmp)
        env = fipsinstall(HOST, work)
        exe = build(work)
        store = file_keystore(work) if args.keystore == "file" else {"backend": "memory"}
        cfg = base_config(work, limits={"rate_limit": {"requests_per_second": 0}, "max_keys_per_client": 1_000_000,
                                        "replay_sync": args.replay_sync},
                         keystore=store, log={"level": "info"})
        with ServiceProcess(HOST, env, work, cfg, programs=programs) as svc:
            out = subprocess.run([exe, svc.socket, str(args.seconds), *(["aes-jobs"] if args.aes_jobs else [])],
                                 env=env, capture_output=True, text=True)
        if out.returncode:
            print(out.stdout, out.stderr, file=sys.stderr)
            return 1
    r = json.loads(out.stdout)
    print(f"machine: {machine()}")
    if args.aes_jobs:
        return aes_jobs_report(r)
    print("all figures: service through the C client library vs OpenSSL EVP in the same process, FIPS provider;")
    print(f"service: {args.programs}; {args.keystore} key store (in {tempfile.gettempdir()}), "
          f"limits.replay_sync {str(args.replay_sync).lower()}\n")
    lat, evp = r["aes64_service_us"], r["aes64_inprocess_us"]
    print(f"RANDOM 16 B round trip     p50 {r['random16_service_us']['p50']:7.1f} us  "
          f"p99 {r['random16_service_us']['p99']:7.1f} us")
    print(f"AES-GCM 64 B encrypt       p50 {lat['p50']:7.1f} us  p99 {lat['p99']:7.1f} us   "
          f"(in-process p50 {evp['p50']:.2f} us)")
    replay = r["replay"]
    print("\nreplay protection (docs/replay.md): protected key (default) vs REPLAYABLE key vs in-process EVP,")
    print("each message decrypted once, one request at a time:")
    for size in (k for k in replay if k.startswith("decrypt_")):
        row = replay[size]
        for kind in ("protected", "replayable", "inprocess"):
            f = row[kind]
            print(f"  AES-GCM decrypt {size[8:]:>5} B {kind:<10} p50 {f['p50']:7.2f} us  p99 {f['p99']:7.2f} us  "
                  f"{f['per_s']:9.0f}/s   vs in-process {f['per_s'] / row['inprocess']['per_s']:.0%}")
    e = replay["encrypt_64_us"]
    print(f"  AES-GCM encrypt    64 B protected  p50 {e['protected']['p50']:7.2f} us  p99 {e['protected']['p99']:7.2f} us"
          f"   replayable p50 {e['replayable']['p50']:.2f} us  p99 {e['replayable']['p99']:.2f} us\n")
    a, j, st = r["aes_max_request_MBps"], r["aes_jobs_MBps"], r["aes_stream_MBps"]
    compare(f"AES-GCM {a['bytes']} B, one at a time", a, "MB/s")
    compare(f"AES-GCM {j['bytes']} B zero-copy jobs, {j['in_flight']} in flight", j, "MB/s")
    compare(f"AES-GCM stream, {st['chunk']} B chunks pipelined", st, "MB/s")
    compare("ML-DSA-65 sign", r["mldsa65_sign_per_s"], "/s")
    compare("ML-KEM-768 keygen(+delete)", r["mlkem768_keygen_per_s"], "/s")
    compare("ML-DSA-65 verify (64 B message)", r["mldsa65_verify_per_s"], "/s")
    compare("ML-KEM-768 encaps, secret returned", r["mlkem768_encaps_per_s"], "/s")
    compare("ML-KEM-768 decaps, secret returned", r["mlkem768_decaps_per_s"], "/s")
    for row in r["mldsa65_sign_scaling"]:
        compare(f"ML-DSA-65 sign, {row['clients']} clients (in-process: threads)", row, "/s")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "programs": args.programs, **r}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
