"""Failures end cleanly, with the reason: a deleted (revoked) key, a service that is down or goes
away. "Cleanly" means the program reports an error and exits (status 1), never a crash, and the
message names what is wrong (crypto_service's status for the key and socket)."""
from __future__ import annotations

import subprocess

from support.targets import HOST

from .prov_support import assert_clean_failure, openssl, peer_client, python_env


def delete_key(service, key_id: int) -> None:
    from wvds.client import Client
    with Client(service.socket) as c:
        c.delete_key(key_id)


def twice(servers, pki, device, client_cnfs) -> subprocess.Popen:
    """A Python client that has made one good connection and waits for a line before the next."""
    proc = subprocess.Popen(peer_client(servers["py_server"], pki, device, "--twice"), env=python_env(
        client_cnfs(HOST.arch)), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = ""
    while not first.startswith("{") and proc.poll() is None:
        first = proc.stdout.readline()
    assert device.cn in first, first + proc.stdout.read() + proc.stderr.read()
    return proc


def test_deleted_key_fails_where_the_key_is_loaded(service, make_device_key, servers, pki, client_cnfs, tmp_path):
    cnf = client_cnfs(HOST.arch)
    device = make_device_key(service, "ECDSA-P256")
    delete_key(service, device.key_id)
    reason = "key not found in crypto_service"
    status = f"key 0x{device.key_id:08x}, socket {service.socket}: WVDS_KEY_NOT_FOUND"
    r = openssl(cnf, "s_client", "-connect", f"127.0.0.1:{servers['s_server'].port}", "-CAfile", str(pki.ca_pem),
                "-cert", str(device.cert), "-key", str(device.ref))
    assert_clean_failure(r, "private key from", reason, status)
    r = openssl(cnf, "req", "-new", "-key", str(device.ref), "-subj", "/CN=revoked", "-out", str(tmp_path / "x.csr"))
    assert_clean_failure(r, reason, status)
    r = subprocess.run(peer_client(servers["py_server"], pki, device), env=python_env(cnf), capture_output=True,
                       text=True, timeout=60)
    assert_clean_failure(r, "ERROR")


def test_key_deleted_while_in_use_fails_the_next_handshake(service, make_device_key, servers, pki, client_cnfs):
    """est_service keeps its SSLContext: the key goes away between two connections."""
    device = make_device_key(service, "ML-DSA-65")
    proc = twice(servers, pki, device, client_cnfs)
    delete_key(service, device.key_id)
    out, err = proc.communicate("next\n", timeout=60)
    assert_clean_failure(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), "ERROR")


def test_service_down_gives_a_clear_error(make_service, make_device_key, servers, pki, client_cnfs, tmp_path):
    cnf = client_cnfs(HOST.arch)
    svc = make_service()
    device = make_device_key(svc, "ML-DSA-65")
    svc.stop()
    expected = ("crypto_service unavailable", f"socket {svc.socket}: WVDS_ERR_CONNECT")
    r = openssl(cnf, "s_client", "-connect", f"127.0.0.1:{servers['s_server'].port}", "-CAfile", str(pki.ca_pem),
                "-cert", str(device.cert), "-key", str(device.ref))
    assert_clean_failure(r, "private key from", *expected)
    r = openssl(cnf, "pkey", "-in", str(device.ref), "-pubout")
    assert_clean_failure(r, *expected)


def test_service_going_away_between_handshakes(make_service, make_device_key, servers, pki, client_cnfs):
    """The provider's connection dies with the service: the next signature fails cleanly."""
    svc = make_service()
    device = make_device_key(svc, "ECDSA-P256")
    proc = twice(servers, pki, device, client_cnfs)
    svc.stop()
    out, err = proc.communicate("next\n", timeout=60)
    assert_clean_failure(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), "ERROR")

