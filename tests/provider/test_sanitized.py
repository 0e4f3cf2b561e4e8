"""The provider's C under AddressSanitizer/UndefinedBehaviorSanitizer (with leak checks), natively:
a copy of wvds.so built from the same sources with sanitizers, loaded into a threaded signing
stress program (stress.c) and into openssl for the failure paths (deleted key, malformed reference,
message too large). The shipped build's flags are checked by test_build.py."""
from __future__ import annotations

import subprocess

from support.targets import HOST, ROOT

from .prov_support import keyref_der, keyref_pem, openssl_env, write_cnf

C_SRC = ROOT / "src" / "c"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def gcc_runtime(name: str) -> str:
    r = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True, check=True)
    return r.stdout.strip()


def test_provider_under_sanitizers(service, make_device_key, client_cnfs, fips_dirs, tmp_path):
    client_cnfs(HOST.arch)  # the regular build first (and the client library it links)
    ossl, clib = HOST.openssl_root, ROOT / "build" / HOST.arch / "clib"
    module = tmp_path / "wvds.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-std=c11", "-O1", "-g", "-pthread", "-fvisibility=hidden", *SANITIZE,
                    f"-I{C_SRC / 'include'}", f"-I{C_SRC / 'provider'}", f"-I{ossl / 'include'}", "-o", str(module),
                    *map(str, sorted((C_SRC / "provider").glob("*.c"))), f"-L{clib}", f"-L{ossl / 'lib'}",
                    "-ll4re_crypto_service", "-lcrypto", f"-Wl,-rpath,{clib}"], check=True)
    stress = tmp_path / "stress"
    subprocess.run(["gcc", "-std=c11", "-O1", "-g", "-pthread", *SANITIZE, f"-I{ossl / 'include'}", "-o", str(stress),
                    str(ROOT / "tests" / "provider" / "stress.c"), f"-L{ossl / 'lib'}", "-lcrypto",
                    f"-Wl,-rpath,{ossl / 'lib'}"], check=True)
    cnf = write_cnf(tmp_path / "asan.cnf", HOST.arch, fips_dirs(HOST.arch)[0])
    cnf.write_text(cnf.read_text().replace(str(ROOT / "build" / HOST.arch / "provider" / "wvds.so"), str(module)))
    env = openssl_env(HOST, cnf, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                      LD_PRELOAD=f"{gcc_runtime('libasan.so')} {gcc_runtime('libubsan.so')}")

    devices = [make_device_key(service, alg) for alg in ("ML-DSA-65", "ECDSA-P256", "ECDSA-P384")]
    r = subprocess.run([str(stress), *(str(d.ref) for d in devices)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "PASS", r.stdout + r.stderr[-20000:]

    # Failure paths: each must fail with its reason and without a sanitizer report.
    from wvds.client import Client
    gone = make_device_key(service, "ML-DSA-44")
    with Client(service.socket) as c:
        c.delete_key(gone.key_id)
    broken = tmp_path / "broken.pem"
    broken.write_text(keyref_pem(keyref_der(devices[0].key_id, "ML-DSA-65", service.socket) + b"\0"))
    big = tmp_path / "big"
    big.write_bytes(bytes(70000))
    openssl = str(ossl / "bin" / "openssl")
    for args, reason in [(["pkey", "-in", str(gone.ref), "-pubout"], "WVDS_KEY_NOT_FOUND"),
                         (["req", "-new", "-key", str(gone.ref), "-subj", "/CN=x"], "WVDS_KEY_NOT_FOUND"),
                         (["pkey", "-in", str(broken), "-pubout"], "malformed WVDS key reference"),
                         (["pkeyutl", "-sign", "-rawin", "-inkey", str(devices[0].ref), "-in", str(big)],
                          "WVDS_PAYLOAD_TOO_LARGE")]:
        r = subprocess.run([openssl, *args], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and reason in r.stderr, (args, r.stderr)
        assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, (args, r.stderr)
