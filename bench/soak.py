#!/usr/bin/env python3
"""Load and soak test of crypto_service: N clients, every result checked, latency and memory reported.

    python bench/soak.py                                  # the 10-minute soak: 16 clients, 600 s
    python bench/soak.py --clients 4 --duration 30        # shorter
    python bench/soak.py --sweep 1,4,16,64 --duration 10  # load levels one after the other
    python bench/soak.py --socket /run/wvds/crypto.sock   # against a running service (no RSS then)

Without --socket it starts its own crypto_service from source (FIPS, memory key store, rate
limit off, log level info) and samples the service's resident memory (VmRSS) every half
second. Clients are threads spread over worker processes (at most 4 processes: one Python
process cannot keep 64 clients busy), each with its own connection, AES-256-GCM key and
ML-DSA-44 key. Each client loops over: AES encrypt, then decrypt and compare (every time);
ML-DSA sign, verified by the service and every 25th time by pyca/cryptography; RANDOM of a
checked length; and, every 200 operations, generate and delete a key; every --reconnect
operations it closes its connection and opens a new one (sessions must not leak).

Checked, and the exit status is non-zero if any fails:
* zero wrong results (decrypt mismatch, signature not verifying, wrong length);
* zero lost requests: no call times out or fails, and at the end each client's AES key has
  been counted by the service exactly as often as the client encrypted with it;
* memory: after a warm-up (the first 20 % of the run) the service's RSS may grow by at most
  --max-growth-mib over the rest of the run (least-squares slope x duration).
Reported: requests per second, latency percentiles per operation, RSS at start/end/max.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

MAX_WORKER_PROCESSES = 4


# --- worker side ------------------------------------------------------------------------------

def _client_loop(socket_path: str, name: str, deadline: float, reconnect: int, out: dict) -> None:
    from cryptography.hazmat.primitives.asymmetric import mldsa

    from wvds.client import Client
    from wvds.protocol.constants import Algorithm

    lat: dict[str, list[float]] = {"encrypt": [], "decrypt": [], "sign": [], "verify": [], "random": [],
                                   "keygen+delete": []}
    wrong, failures, encrypts = [], [], 0
    ops = 0
    c = None
    aes = dsa = None
    try:
        c = Client(socket_path, timeout_ms=30_000)
        aes = c.generate_key(Algorithm.AES_256_GCM, label=name).key_id
        created = c.generate_key(Algorithm.ML_DSA_44, label=name)
        dsa, public = created.key_id, mldsa.MLDSA44PublicKey.from_public_bytes(created.public_key)
        i = 0
        while time.monotonic() < deadline:
            i += 1
            msg = (b"%s/%d " % (name.encode(), i)) * (1 + i % 40)
            t = time.perf_counter()
            sealed = c.encrypt(aes, msg, b"soak")
            lat["encrypt"].append(time.perf_counter() - t)
            encrypts += 1
            t = time.perf_counter()
            plain = c.decrypt(aes, sealed, b"soak")
            lat["decrypt"].append(time.perf_counter() - t)
            if plain != msg or len(sealed) != len(msg) + 28:
                wrong.append(f"AES round trip {i}")
            if i % 5 == 0:
                t = time.perf_counter()
                sig = c.mldsa_sign(dsa, msg)
                lat["sign"].append(time.perf_counter() - t)
                t = time.perf_counter()
                ok = c.mldsa_verify(dsa, msg, sig)
                lat["verify"].append(time.perf_counter() - t)
                if not ok:
                    wrong.append(f"service rejects its own signature {i}")
                if i % 25 == 0:
                    try:
                        public.verify(sig, msg)
                    except Exception:  # noqa: BLE001  InvalidSignature
                        wrong.append(f"signature {i} does not verify independently")
                n = i % 97
                t = time.perf_counter()
                if len(c.random(n)) != n:
                    wrong.append(f"RANDOM({n}) length")
                lat["random"].append(time.perf_counter() - t)
            if i % 200 == 0:
                t = time.perf_counter()
                c.delete_key(c.generate_key(Algorithm.AES_256_GCM, label=name + "-churn").key_id)
                lat["keygen+delete"].append(time.perf_counter() - t)
            ops += 1
            if reconnect and i % reconnect == 0:
                c.close()
                c = Client(socket_path, timeout_ms=30_000)
        counted = c.describe_key(aes).uses
        if counted != encrypts:
            wrong.append(f"service counted {counted} encryptions, client made {encrypts}")
        c.delete_key(aes)
        c.delete_key(dsa)
    except Exception as e:  # noqa: BLE001  a timeout, a transport failure, an error status: a lost request
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        if c is not None:
            c.close()
    out[name] = {"lat": lat, "wrong": wrong, "failures": failures, "ops": ops, "encrypts": encrypts}


def worker_main(socket_path: str, threads: int, duration: float, prefix: str, reconnect: int, out_path: str) -> None:
    deadline = time.monotonic() + duration
    out: dict = {}
    ts = [threading.Thread(target=_client_loop, args=(socket_path, f"{prefix}-{k}", deadline, reconnect, out))
          for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    Path(out_path).write_text(json.dumps(out))  # a file, not stdout: a full pipe would block the worker


# --- driver side ------------------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    s = sorted(samples)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))] * 1e6, 1)
    return {"n": len(s), "p50_us": q(0.50), "p90_us": q(0.90), "p99_us": q(0.99), "max_us": round(s[-1] * 1e6, 1)}


def _slope_per_s(points: list[tuple[float, int]]) -> float:
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def run_load(socket_path: str, clients: int, duration: float, service_pid: int | None = None,
             reconnect: int = 2000, env: dict | None = None) -> dict:
    """Run `clients` checked clients for `duration` seconds; return the report (see module doc)."""
    procs = min(clients, MAX_WORKER_PROCESSES)
    per = [clients // procs + (1 if k < clients % procs else 0) for k in range(procs)]
    wenv = dict(env or os.environ)
    wenv["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    rss: list[tuple[float, int]] = []
    tmp = Path(tempfile.mkdtemp(prefix="wvds-soak-workers-"))
    t0 = time.monotonic()
    workers = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", "--socket", socket_path,
                                 "--threads", str(n), "--duration", str(duration), "--prefix", f"c{k}",
                                 "--reconnect", str(reconnect), "--out", str(tmp / f"w{k}.json")],
                                env=wenv, stdout=subprocess.DEVNULL, stderr=open(tmp / f"w{k}.err", "w"))
               for k, n in enumerate(per)]
    hard_deadline = t0 + duration + 120  # a worker stuck past this is itself a finding (lost requests)
    while any(w.poll() is None for w in workers) and time.monotonic() < hard_deadline:
        if service_pid:
            try:
                rss.append((time.monotonic() - t0, rss_kib(service_pid)))
            except OSError:
                pass
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    results: dict = {}
    worker_errors = []
    for k, w in enumerate(workers):
        if w.poll() is None:
            w.kill()
            w.wait()
            worker_errors.append(f"worker {k} still running {duration + 120:.0f} s after start: killed")
            continue
        if w.returncode != 0 or not (tmp / f"w{k}.json").exists():
            worker_errors.append((tmp / f"w{k}.err").read_text()[-2000:])
            continue
        results.update(json.loads((tmp / f"w{k}.json").read_text()))
    shutil.rmtree(tmp, ignore_errors=True)
    lat: dict[str, list[float]] = {}
    for r in results.values():
        for op, xs in r["lat"].items():
            lat.setdefault(op, []).extend(xs)
    requests = sum(len(xs) for xs in lat.values()) + sum(1 for _ in lat.get("keygen+delete", []))
    report = {
        "clients": clients, "duration_s": round(elapsed, 1), "client_loops": sum(r["ops"] for r in results.values()),
        "requests": requests, "requests_per_s": round(requests / elapsed, 1),
        "wrong_results": [w for r in results.values() for w in r["wrong"]],
        "lost_requests": [f for r in results.values() for f in r["failures"]] + worker_errors
        + [f"client {k} missing" for k in range(clients - len(results))],
        "latency": {op: _percentiles(xs) for op, xs in lat.items()},
    }
    if rss:
        warm = [p for p in rss if p[0] >= 0.2 * rss[-1][0]]
        slope = _slope_per_s(warm)
        report["rss_kib"] = {"start": rss[0][1], "end": rss[-1][1], "max": max(v for _, v in rss),
                             "samples": len(rss), "after_warmup": warm[0][1] if warm else None,
                             "growth_after_warmup_kib": round(slope * (warm[-1][0] - warm[0][0])) if warm else 0,
                             "slope_kib_per_min": round(slope * 60, 1)}
    return report


def start_service(work: Path, max_clients: int):
    from support.fips import fipsinstall
    from support.service import ServiceProcess, base_config
    from support.targets import HOST
    env = fipsinstall(HOST, work)
    cfg = base_config(work, limits={"rate_limit": {"requests_per_second": 0}, "max_clients": max_clients},
                      log={"level": "info"})  # info: ServiceProcess waits for the "ready" line
    return ServiceProcess(HOST, env, work, cfg).start()


def print_report(r: dict) -> None:
    print(f"\n{r['clients']} clients, {r['duration_s']} s: {r['requests']} requests ({r['requests_per_s']}/s), "
          f"wrong results: {len(r['wrong_results'])}, lost requests: {len(r['lost_requests'])}")
    for op, p in r["latency"].items():
        if p:
            print(f"  {op:14s} n={p['n']:7d}  p50 {p['p50_us']:9.1f} us  p90 {p['p90_us']:9.1f} us  "
                  f"p99 {p['p99_us']:9.1f} us  max {p['max_us']:10.1f} us")
    if "rss_kib" in r:
        m = r["rss_kib"]
        print(f"  service RSS: start {m['start'] / 1024:.1f} MiB, after warm-up {m['after_warmup'] / 1024:.1f} MiB, "
              f"end {m['end'] / 1024:.1f} MiB, max {m['max'] / 1024:.1f} MiB; growth after warm-up "
              f"{m['growth_after_warmup_kib'] / 1024:+.2f} MiB ({m['slope_kib_per_min']:+.1f} KiB/min)")
    for w in (r["wrong_results"] + r["lost_requests"])[:10]:
        print(f"  ! {w}")


def verdict(r: dict, max_growth_mib: float) -> list[str]:
    problems = []
    if r["wrong_results"]:
        problems.append(f"{len(r['wrong_results'])} wrong results")
    if r["lost_requests"]:
        problems.append(f"{len(r['lost_requests'])} lost requests")
    if r["client_loops"] == 0:
        problems.append("no work done")
    growth = r.get("rss_kib", {}).get("growth_after_warmup_kib", 0) / 1024
    if growth > max_growth_mib:
        problems.append(f"service memory grew {growth:.1f} MiB after warm-up (limit {max_growth_mib} MiB)")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds (per load level with --sweep)")
    ap.add_argument("--sweep", help="comma-separated client counts, e.g. 1,4,16,64")
    ap.add_argument("--socket", help="use a running service instead of starting one")
    ap.add_argument("--reconnect", type=int, default=2000, help="reconnect every N loops (0: never)")
    ap.add_argument("--max-growth-mib", type=float, default=8.0)
    ap.add_argument("--json", help="write the reports here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--prefix", default="c", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args.socket, args.threads, args.duration, args.prefix, args.reconnect, args.out)
        return 0
    levels = [int(x) for x in args.sweep.split(",")] if args.sweep else [args.clients]
    reports, problems = [], []
    with tempfile.TemporaryDirectory(prefix="wvds-soak-") as tmp:
        svc = None if args.socket else start_service(Path(tmp), max(levels) + 8)
        try:
            sock = args.socket or svc.socket
            for n in levels:
                r = run_load(sock, n, args.duration, None if svc is None else svc.proc.pid, args.reconnect)
                print_report(r)
                reports.append(r)
                problems += [f"{n} clients: {p}" for p in verdict(r, args.max_growth_mib)]
        finally:
            if svc is not None:
                svc.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2))
    print("\nFAIL: " + "; ".join(problems) if problems else "\nPASS")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
