"""TLS 1.3 with client authentication, the device key held by crypto_service and used through wvds.

Clients: openssl s_client of each architecture (`-cert device.pem -key device.ref.pem`), and, on
the host, Python's ssl module the way est_service uses it (`load_cert_chain(cert, ref)`), each in
FIPS mode with the provider loaded by openssl.cnf. Servers: OpenSSL s_server and a Python ssl
server, both requiring a client certificate and verifying its chain to the test CA.

Every handshake must also show up in crypto_service as one signature by that key (its use
counter): the private-key operation really happened there.

Under qemu-user every OpenSSL process spends seconds in the FIPS provider's self-tests, so the
emulated architecture runs two handshakes (each key type once, each server once) instead of the
native four.
"""
from __future__ import annotations

import subprocess

from support.targets import HOST, ROOT

from .prov_support import REQUEST, openssl_env, parse_peer_line, peer_client, python_env, s_client_command

SIG_TYPE = {"ML-DSA-65": "mldsa65", "ECDSA-P256": "ecdsa_secp256r1_sha256"}
NATIVE_CASES = [(alg, kind) for alg in ("ML-DSA-65", "ECDSA-P256") for kind in ("s_server", "py_server")]
EMULATED_CASES = [("ML-DSA-65", "py_server"), ("ECDSA-P256", "s_server")]


def uses(service, key_id: int) -> int:
    from wvds.client import Client
    with Client(service.socket) as c:
        return c.describe_key(key_id).uses


def check_answer(kind: str, out: str, device) -> None:
    if kind == "s_server":  # s_server -www describes the connection it accepted
        assert "Protocol  : TLSv1.3" in out and "Verify return code: 0 (ok)" in out, out
        assert f"Peer signature type: {SIG_TYPE[device.algorithm]}" in out, out
        assert f"Subject: CN={device.cn}" in out, out
    else:
        answer = parse_peer_line(out)
        assert answer["version"] == "TLSv1.3" and answer["client_cn"] == device.cn, answer
        assert answer["openssl"].startswith("OpenSSL 3.6"), answer


def test_openssl_s_client_authenticates_with_a_service_key(target, service, devices, servers, pki, client_cnfs,
                                                           tmp_path):
    env = openssl_env(target, client_cnfs(target.arch))
    request = tmp_path / "request"
    request.write_bytes(REQUEST)
    cases = NATIVE_CASES if target.native else EMULATED_CASES
    before = {alg: uses(service, d.key_id) for alg, d in devices.items()}
    runs = []
    for alg, kind in cases:  # concurrently: under qemu each one takes seconds to start
        cmd = s_client_command(target, servers[kind], pki, devices[alg].cert, devices[alg].ref)
        with open(request, "rb") as stdin:  # all requests up front: a server serves one client at a time
            proc = subprocess.Popen(cmd, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        runs.append((alg, kind, proc))
    for alg, kind, proc in runs:
        out, err = proc.communicate(timeout=300)
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        assert proc.returncode == 0, f"{alg} -> {kind}:\n{out}\n{err}"
        check_answer(kind, out, devices[alg])
    for alg, d in devices.items():
        assert uses(service, d.key_id) == before[alg] + sum(1 for a, _ in cases if a == alg)


def test_python_ssl_load_cert_chain_with_a_key_reference(service, devices, servers, pki, client_cnfs):
    """est_service's way: ssl.SSLContext.load_cert_chain(device cert, reference file)."""
    env = python_env(client_cnfs(HOST.arch))
    for alg, kind in NATIVE_CASES:
        device = devices[alg]
        before = uses(service, device.key_id)
        r = subprocess.run(peer_client(servers[kind], pki, device), env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        check_answer(kind, r.stdout, device)
        assert uses(service, device.key_id) == before + 1


def test_est_service_way_explicit_config_load(service, devices, servers, pki, client_cnfs):
    """est_service configures OpenSSL with wvds.ossl.load(openssl.config, openssl.modules) (no
    $OPENSSL_CONF; it also sets fips=yes) before using ssl: the same openssl.cnf, with wvds in it."""
    cnf = client_cnfs(HOST.arch)
    env = dict(HOST.env(), LD_LIBRARY_PATH=str(HOST.openssl_root / "lib"), PYTHONPATH=str(ROOT / "src"))
    device = devices["ML-DSA-65"]
    r = subprocess.run(peer_client(servers["py_server"], pki, device, "--load", str(cnf),
                                   str(HOST.openssl_root / "lib" / "ossl-modules")),
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    check_answer("py_server", r.stdout, device)
