"""Re-enrollment authenticated by the current certificate, its device key in crypto_service.

est_service gives OpenSSL the current generation's chain.pem and key.ref.pem (a wvds key reference)
as TLS client credential; the wvds provider (loaded by est_service's openssl.cnf) forwards the
CertificateVerify signature to crypto_service. The test EST server accepts only a client
certificate for /simplereenroll (`require_client_cert`), verifies it in the handshake against its
root and checks that it names the CSR's subject; no Basic credentials are sent.
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest
from cryptography import x509

from support.targets import HOST, ROOT

from support.est import assert_valid_pair, raw_public_key

KEYREF_TOOL = ROOT / "build" / HOST.arch / "provider" / "wvds-keyref"


def _uses(client, key_id: int) -> int:
    """Signatures crypto_service has made with the key."""
    from wvds.client import Client
    with Client(client.crypto.socket) as c:
        return c.describe_key(key_id).uses


def _labelled_keys(client) -> list[int]:
    from wvds.client import Client
    label = client.config["certificates"][0]["key_label"]
    with Client(client.crypto.socket) as c:
        return [k for k, _alg in c.list_keys() if c.describe_key(k).label == label]


def _check_reenroll_by(est_server, cert: x509.Certificate, status: int = 200) -> dict:
    """The one /simplereenroll of the log: authenticated by this certificate, no Basic credentials."""
    posts = est_server.requests("simplereenroll")
    assert len(posts) == 1, posts
    r = posts[0]
    assert r["status"] == status and r["authenticated_by"] == "client_cert", r
    assert r["basic_user"] is None  # no Authorization header at all
    assert r["client_cert"] == cert.subject.rfc4514_string() == r["csr_subject"]
    assert r["client_cert_serial"] == format(cert.serial_number, "x")
    assert r["tls"] == "TLSv1.3"
    return r


@pytest.mark.parametrize("alg", ["ML-DSA-65", "ECDSA-P256"])
def test_reenroll_authenticated_by_the_current_certificate(make_client, est_server, wvds_openssl_cnf, alg):
    c = make_client(alg, name=f"mtls-{alg}")
    c.use_current_certificate(wvds_openssl_cnf)
    est_server.control(require_client_cert=["simplereenroll"])
    c.once()  # first enrollment: bootstrap (Basic) credentials
    first = assert_valid_pair(c)
    meta = c.pair()[2]
    key_id = meta["key_id"]
    # the generation's key reference: what `wvds-keyref KEY_ID --socket S` writes for the key, byte for byte
    ref = (c.cert_dir / "current" / "key.ref.pem").read_text()
    tool = subprocess.run([str(KEYREF_TOOL), "--socket", c.crypto.socket, str(key_id)], capture_output=True,
                          text=True, env=HOST.env(), timeout=30)
    assert tool.returncode == 0, tool.stderr
    assert ref == tool.stdout and meta["crypto_service_socket"] == c.crypto.socket

    est_server.control(require_client_cert=["simplereenroll"])
    uses = _uses(c, key_id)
    c.once("--force")
    renewed = assert_valid_pair(c)
    _check_reenroll_by(est_server, first)
    # two signatures by the device key, both made in crypto_service: the CSR and the TLS CertificateVerify
    assert _uses(c, key_id) == uses + 2
    assert raw_public_key(renewed) == raw_public_key(first) and renewed.serial_number != first.serial_number
    assert c.generation() == 2 and (c.cert_dir / "current" / "key.ref.pem").read_text() == ref
    assert not est_server.requests("simpleenroll")

    # rekey: authenticated by the old key once more; the new generation references the new key,
    # and the next re-enrollment signs its handshake with that one
    c.config["certificates"][0]["rekey"] = True
    c.write_config()
    est_server.control(require_client_cert=["simplereenroll"])
    c.once("--force")
    rekeyed = assert_valid_pair(c)
    _check_reenroll_by(est_server, renewed)
    new_key = c.pair()[2]["key_id"]
    assert new_key != key_id
    assert f"key 0x{new_key:08x}" in (c.cert_dir / "current" / "key.ref.pem").read_text()
    c.config["certificates"][0]["rekey"] = False
    c.write_config()
    est_server.control(require_client_cert=["simplereenroll"])
    uses = _uses(c, new_key)
    c.once("--force")
    assert_valid_pair(c)
    r = _check_reenroll_by(est_server, rekeyed)
    assert r["client_cert_key"] == type(rekeyed.public_key()).__name__
    assert _uses(c, new_key) == uses + 2
    status = c.status()
    assert status["state"] == "valid" and status["failures"] == 0 and status["generation"] == 4


def test_deleted_device_key_keeps_the_old_pair(make_client, est_server, wvds_openssl_cnf):
    """The current certificate's key is gone: a clear error before anything is generated or sent."""
    from wvds.client import Client
    c = make_client("ECDSA-P256", name="mtls-deleted")
    c.use_current_certificate(wvds_openssl_cnf)
    c.once()
    before = {p.name: p.read_bytes() for p in (c.cert_dir / "current").iterdir()}
    key_id = c.pair()[2]["key_id"]
    with Client(c.crypto.socket) as cl:
        cl.delete_key(key_id)
    est_server.control(require_client_cert=["simplereenroll"])
    c.once("--force", expect=1)
    error = c.status()["last_error"]
    assert f"device key {key_id:#010x} is gone from crypto_service (KEY_NOT_FOUND" in error, error
    assert "client_cert \"current\"" in error and "could not load" not in error  # checked before any TLS
    assert not est_server.requests("simplereenroll") and c.generation() == 1
    assert {p.name: p.read_bytes() for p in (c.cert_dir / "current").iterdir()} == before
    assert c.state().get("pending") is None and _labelled_keys(c) == []  # no new key was made for nothing


def test_key_deleted_while_a_request_is_pending(make_client, est_server, wvds_openssl_cnf):
    """The key goes while the server keeps answering 202: the next poll cannot load the reference;
    crypto_service is asked why (Python's ssl only says "PEM lib"), the request is dropped."""
    from wvds.client import Client
    c = make_client("ML-DSA-65", name="mtls-pending")
    c.use_current_certificate(wvds_openssl_cnf)
    c.once()
    cert = c.pair()[0]
    key_id = c.pair()[2]["key_id"]
    est_server.control(require_client_cert=["simplereenroll"], pending={"count": 100, "retry_after": "2"})
    proc = subprocess.Popen(c.command("once", "--force"), env=c.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not est_server.requests("simplereenroll"):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        with Client(c.crypto.socket) as cl:
            cl.delete_key(key_id)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    _check_reenroll_by(est_server, cert, status=202)  # the one poll before the deletion, then no more
    error = c.status()["last_error"]
    # found out when OpenSSL (the wvds provider) could not load the reference, then asked crypto_service
    assert f"could not load {c.cert_dir}/gen-000001/key.ref.pem: its device key {key_id:#010x} is gone from " \
           "crypto_service (KEY_NOT_FOUND" in error, error
    assert c.state().get("pending") is None and c.generation() == 1


def test_without_the_wvds_provider_est_service_does_not_start(make_client, est_server):
    """client_cert "current" with an OpenSSL configuration that lacks wvds: refused at start, with the fix."""
    c = make_client(name="mtls-noprovider")
    c.config["servers"]["test"]["auth"]["reenroll"] = {"client_cert": "current"}
    c.write_config()
    r = c.once(expect=1)
    assert "needs the wvds OpenSSL provider" in r.stderr and "wvds = wvds_sect" in r.stderr
    assert not est_server.requests()


def test_crypto_service_down(est_fips_env, est_server, wvds_openssl_cnf, tmp_path):
    """crypto_service not running at re-enrollment: said so; after it is back, re-enrollment works."""
    from support.service import ServiceProcess, base_config
    from support.est import EstClient
    svc_dir = tmp_path / "svc"
    svc_dir.mkdir()
    secret = svc_dir / "device.secret"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o600)
    # a file key store: the device key must survive the restart
    cfg = base_config(svc_dir, log={"level": "info"},
                      keystore={"backend": "file", "directory": str(svc_dir / "keys"), "secret_file": str(secret)})
    with ServiceProcess(HOST, est_fips_env, svc_dir, cfg) as svc:
        c = EstClient(tmp_path / "c", est_fips_env, svc, est_server, "ECDSA-P256")
        c.use_current_certificate(wvds_openssl_cnf)
        try:
            c.once()
            cert = c.pair()[0]
            svc.stop()
            est_server.control(require_client_cert=["simplereenroll"])
            c.once("--force", expect=1)
            error = c.status()["last_error"]
            assert "crypto_service unreachable" in error and "cannot be used" in error, error
            assert not est_server.requests("simplereenroll") and c.generation() == 1
            svc.start()
            c.once("--force")
            _check_reenroll_by(est_server, cert)
            assert c.generation() == 2
        finally:
            est_server.control()  # the server is shared: back to its defaults
