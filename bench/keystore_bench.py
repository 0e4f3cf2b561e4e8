"""Benchmark the key-store backends side by side: file (secret / passphrase), TPM 2.0 (swtpm), PKCS#11 (SoftHSMv2).

    python bench/keystore_bench.py [--keys 200] [--json out.json]

For each backend: opening the store (getting the KEK: HKDF, PBKDF2, TPM unseal
or token login, plus the header check), storing newly generated keys (seal +
atomic write + fsync), loading every key at start-up, and - where the backend
holds keys natively - generating and using keys inside the TPM/HSM. swtpm and
SoftHSM are software, so their numbers show the protocol and TSS/PKCS#11
overhead, not the speed of a real TPM (typically 10-100x slower) or HSM.
The measurements run in a child Python that maps only our OpenSSL 3.6.3 with
the FIPS provider, like the service does. Numbers vary with the disk (fsync).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.machine())
    fs = subprocess.run(["df", "-T", tempfile.gettempdir()], capture_output=True, text=True).stdout.split("\n")[1:2]
    fstype = fs[0].split()[1] if fs and fs[0] else "?"
    return (f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}, "
            f"{tempfile.gettempdir()} on {fstype}")


# -- child: runs in the FIPS process ---------------------------------------------

def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def child(spec: dict) -> dict:
    from wvds import ossl
    ossl.load()
    from types import SimpleNamespace

    from wvds.crypto_service.engines import element_engine
    from wvds.keystore import KeyRecord, open_keystore
    from wvds.protocol.constants import Algorithm, KeyFormat

    settings, n = spec["settings"], spec["keys"]
    t = time.perf_counter()
    store = open_keystore(settings)
    create_s = time.perf_counter() - t
    out = {"create_store_ms": create_s * 1000}
    now = int(time.time())

    def records(alg, form, size, start):
        return [KeyRecord(start + i, alg, 3 if alg == Algorithm.AES_256_GCM else 12, 0, f"bench-{i}", now, form,
                          ossl.random_bytes(size), 4096 if alg == Algorithm.AES_256_GCM else 0) for i in range(n)]

    aes = records(Algorithm.AES_256_GCM, KeyFormat.RAW, 32, 1)
    dsa = records(Algorithm.ML_DSA_65, KeyFormat.SEED, 32, 100_000)
    t = time.perf_counter()
    for r in aes:
        store.save(r)
    out["save_aes_per_s"] = rate(n, time.perf_counter() - t)
    t = time.perf_counter()
    for r in dsa:
        store.save(r)
    out["save_mldsa_per_s"] = rate(n, time.perf_counter() - t)
    t = time.perf_counter()
    for r in aes[: n // 2]:
        store.save(r.with_reserved(r.uses_reserved + 4096))  # what count_use does every 4096 encryptions
    out["counter_update_per_s"] = rate(n // 2, time.perf_counter() - t)

    engine = element_engine(store)  # the TPM's / token's engine: generates and signs there
    native = sorted(engine.algorithms()) if engine is not None else []
    if native:
        alg = Algorithm.ECDSA_P256 if Algorithm.ECDSA_P256 in native else native[0]
        m = max(5, n // 10)
        t = time.perf_counter()
        made = []
        for i in range(m):
            _, ref, handle = engine.generate(500_000 + i, alg)
            store.save(KeyRecord(500_000 + i, alg, 12, 0, "native", now, KeyFormat.RAW, ref, 0, True))
            made.append(SimpleNamespace(handle=handle))  # what the engine reads of a service key
        out[f"native_generate_{alg.name}_per_s"] = rate(m, time.perf_counter() - t)
        t = time.perf_counter()
        for key in made * 2:
            engine.ecdsa_sign(key, b"benchmark message", "SHA256", False)
        out[f"native_sign_{alg.name}_per_s"] = rate(2 * m, time.perf_counter() - t)
    store.close()

    t = time.perf_counter()
    store = open_keystore(settings)
    opened = time.perf_counter() - t
    t = time.perf_counter()
    loaded = store.load()
    load_s = time.perf_counter() - t
    out.update(open_store_ms=opened * 1000, load_keys=len(loaded), load_keys_per_s=rate(len(loaded), load_s),
               start_total_ms=(opened + load_s) * 1000)
    if native:
        engine = element_engine(store)
        t = time.perf_counter()
        for rec in loaded:
            if rec.native:
                engine.open(rec)
        out["open_native_ms"] = (time.perf_counter() - t) * 1000
    store.close()
    return out


# -- parent: sets up swtpm / SoftHSM, runs one child per backend -------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=200, help="keys of each kind stored and loaded per backend")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    from support.fips import fipsinstall
    from support.softhsm import SoftHsm
    from support.targets import HOST
    from support.tpm import Swtpm

    results = {}
    with tempfile.TemporaryDirectory(prefix="wvds-ksbench-") as tmp:
        work = Path(tmp)
        env = fipsinstall(HOST, work)
        env.update(LD_LIBRARY_PATH=str(HOST.openssl_root / "lib"), PYTHONPATH=str(ROOT / "src"))
        secret = work / "secret"
        secret.write_bytes(os.urandom(32))
        secret.chmod(0o600)
        hsm = SoftHsm(work / "softhsm")
        hsm.init_token("bench", "bench-pin-1234")
        with Swtpm(work / "swtpm") as tpm:
            backends = {
                "file (secret file, HKDF)": ({"backend": "file", "secret_file": str(secret)}, {}),
                "file (passphrase, PBKDF2 600k)": ({"backend": "file", "passphrase_env": "BENCH_PASSPHRASE"},
                                                   {"BENCH_PASSPHRASE": "benchmark passphrase"}),
                "tpm (swtpm, sealed KEK)": ({"backend": "tpm", "tcti": tpm.tcti, "native": ["ecdsa-p256"]}, {}),
                "pkcs11 (SoftHSMv2, KEK in token)": ({"backend": "pkcs11", "module": hsm.module, "token_label": "bench",
                                                      "pin_env": "BENCH_PIN", "native": ["ecdsa-p256"]},
                                                     {**hsm.env, "BENCH_PIN": "bench-pin-1234"}),
            }
            for i, (name, (settings, extra)) in enumerate(backends.items()):
                spec = {"settings": {**settings, "directory": str(work / f"store{i}")}, "keys": args.keys}
                r = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env={**env, **extra},
                                   capture_output=True, text=True, timeout=900)
                if r.returncode:
                    print(f"{name}: failed\n{r.stderr[-3000:]}", file=sys.stderr)
                    return 1
                results[name] = json.loads(r.stdout.strip().splitlines()[-1])

    print(f"Key store benchmark, {args.keys} AES + {args.keys} ML-DSA-65 keys per backend")
    print(f"machine: {machine()}\n")
    rows = [("create store (KEK set-up), ms", "create_store_ms", "{:.1f}"),
            ("store new AES key, keys/s", "save_aes_per_s", "{:.0f}"),
            ("store new ML-DSA-65 key, keys/s", "save_mldsa_per_s", "{:.0f}"),
            ("persist AES counter reservation, /s", "counter_update_per_s", "{:.0f}"),
            ("open store at start (KEK), ms", "open_store_ms", "{:.1f}"),
            ("load keys at start, keys/s", "load_keys_per_s", "{:.0f}"),
            ("start total (open + load all), ms", "start_total_ms", "{:.1f}"),
            ("native ECDSA P-256 generate, keys/s", "native_generate_ECDSA_P256_per_s", "{:.1f}"),
            ("native ECDSA P-256 sign, sig/s", "native_sign_ECDSA_P256_per_s", "{:.1f}")]
    names = list(results)
    width = max(len(r[0]) for r in rows)
    short = ["file", "file+pw", "tpm", "pkcs11"]
    print(" " * width + "".join(f"{s:>11}" for s in short))
    for label, key, fmt in rows:
        cells = [fmt.format(results[n][key]) if key in results[n] else "-" for n in names]
        print(f"{label:<{width}}" + "".join(f"{c:>11}" for c in cells))
    base = results[names[0]]
    print("\nrelative to the file backend (secret file):")
    for n, s in zip(names[1:], short[1:]):
        r = results[n]
        print(f"  {s:<8} store {r['save_mldsa_per_s'] / base['save_mldsa_per_s']:.2f}x, "
              f"load {r['load_keys_per_s'] / base['load_keys_per_s']:.2f}x, "
              f"start {r['start_total_ms'] / base['start_total_ms']:.2f}x the time  ({n})")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "keys": args.keys, "results": results},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
