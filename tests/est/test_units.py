"""Pure-Python parts of est_service, in-process (no FIPS, no network): parsing and configuration."""
from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7 as pyca_pkcs7

from wvds.est_service import config, pkcs7
from wvds.est_service.errors import ConfigError, ProtocolError
from wvds.est_service.http import retry_after


def _cert() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "t")])
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))


def test_body_decoding_is_lenient_where_rfc8951_says_so():
    cert = _cert()
    der = pyca_pkcs7.serialize_certificates([cert], serialization.Encoding.DER)
    b64 = base64.b64encode(der)
    spaced = b"\r\n ".join(b64[i:i + 50] for i in range(0, len(b64), 50)) + b"\r\n"
    for body in (b64, spaced, b64.rstrip(b"="), der,
                 b"-----BEGIN PKCS7-----\n" + spaced + b"-----END PKCS7-----\n"):
        certs = pkcs7.certs_only(pkcs7.decode_body(body, "t"), "t")
        assert [c.der for c in certs] == [cert.public_bytes(serialization.Encoding.DER)]


@pytest.mark.parametrize("body", [b"", b"   ", b"not base64 !!", base64.b64encode(b"\x30\x03\x02\x01\x05"),
                                  base64.b64encode(b"garbage")])
def test_body_decoding_is_strict_about_structure(body):
    with pytest.raises(ProtocolError):
        pkcs7.certs_only(pkcs7.decode_body(body, "t"), "t")


def test_retry_after_seconds_and_http_date():
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert retry_after("120", now) == 120
    assert retry_after(" 5 ", now) == 5
    date = email.utils.format_datetime(now + dt.timedelta(seconds=30), usegmt=True)
    assert retry_after(date, now) == 30
    assert retry_after(email.utils.format_datetime(now - dt.timedelta(seconds=30), usegmt=True), now) == 0
    assert retry_after("soon", now) is None and retry_after(None, now) is None


def _base(tmp_path, **cert):
    pw = tmp_path / "pw"
    pw.write_text("x")
    ta = tmp_path / "ta.pem"
    ta.write_bytes(_cert().public_bytes(serialization.Encoding.PEM))
    return {"state_dir": str(tmp_path / "state"),
            "servers": {"s": {"url": "https://est.example:8443", "trust_anchor": str(ta),
                              "auth": {"bootstrap": {"username": "u", "password_file": str(pw)}}}},
            "certificates": [{"name": "device", "subject": {"CN": "x"}, **cert}]}


def test_config_defaults(tmp_path):
    cfg = config.parse(_base(tmp_path))
    s, c = cfg.servers["s"], cfg.certificates[0]
    assert (s.host, s.port, s.tls.min_version, s.tls.groups) == (
        "est.example", 8443, "1.3", ("X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024"))
    assert s.path("cacerts") == "/.well-known/est/cacerts"
    assert c.key_algorithm == "ML-DSA-65" and abs(c.renew_at - 2 / 3) < 1e-9 and c.server == "s"
    assert s.reenroll.username == "u"  # re-enrollment falls back to the bootstrap Basic credentials
    assert cfg.status_file == str(tmp_path / "state" / "status.json")


def test_config_tls12_adds_classic_groups(tmp_path):
    doc = _base(tmp_path)
    doc["servers"]["s"]["tls"] = {"min_version": "1.2"}
    doc["servers"]["s"]["label"] = "arbitrary"
    s = config.parse(doc).servers["s"]
    assert "secp256r1" in s.tls.groups and s.path("simpleenroll") == "/.well-known/est/arbitrary/simpleenroll"


def test_config_errors_are_all_reported(tmp_path):
    doc = _base(tmp_path, key_algorithm="RSA-2048", renew_at=1.5, colour="blue")
    doc["servers"]["s"]["url"] = "http://est.example/est"
    doc["servers"]["s"]["auth"]["reenroll"] = {"client_cert": "current", "client_key": str(tmp_path / "pw")}
    doc["servers"]["s"]["bootstrap_ca_fingerprint"] = "zz"
    with pytest.raises(ConfigError) as e:
        config.parse(doc, "est.json")
    text = str(e.value)
    for needle in ("certificates[0].key_algorithm", "certificates[0].renew_at", "certificates[0].colour: unknown",
                   "servers.s.url", 'auth.reenroll.client_key: must be absent with client_cert "current"',
                   "bootstrap_ca_fingerprint"):
        assert needle in text, text
    assert all(line.startswith("est.json: ") for line in text.splitlines())


def test_config_reenroll_with_the_current_certificate(tmp_path):
    """client_cert "current": re-enrollment only, no client_key (the key is the device key in crypto_service)."""
    doc = _base(tmp_path)
    doc["servers"]["s"]["auth"]["reenroll"] = {"client_cert": "current"}
    s = config.parse(doc).servers["s"]
    assert s.reenroll.current and s.reenroll.tls and not s.reenroll.basic and s.reenroll.client_key is None
    assert not s.bootstrap.current and s.bootstrap.basic
    doc["servers"]["s"]["auth"]["reenroll"] = {"client_cert": "current", "username": "u",
                                               "password_file": str(tmp_path / "pw")}
    s = config.parse(doc).servers["s"]
    assert s.reenroll.current and s.reenroll.basic  # both may go out; the server decides
    doc["servers"]["s"]["auth"]["bootstrap"]["client_cert"] = "current"
    doc["crypto_service"] = {"socket": "/" + "s" * 107}
    with pytest.raises(ConfigError) as e:
        config.parse(doc)
    assert 'auth.bootstrap.client_cert: "current" is for re-enrollment only' in str(e.value)
    assert "crypto_service.socket: at most 107 bytes" in str(e.value)


class _KeyRef(core.Sequence):
    """docs/provider.md's WvdsKeyReference, to read references back."""
    _fields = [("format", core.UTF8String), ("key_id", core.Integer), ("algorithm", core.UTF8String),
               ("socket", core.UTF8String, {"optional": True})]


@pytest.mark.parametrize("key_id", [1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
def test_key_reference_format(key_id):
    """The reference est_service writes, read back with asn1crypto (strict DER) from the PEM.
    (test_mtls.py compares it byte for byte with the wvds-keyref tool's.)"""
    from wvds.est_service import keyref
    for alg in ("ML-DSA-44", "ML-DSA-65", "ML-DSA-87", "EC-P-256", "EC-P-384"):
        _check_key_reference(key_id, alg, "/run/wvds/" + "x" * 97)  # 107 bytes: the longest allowed
        _check_key_reference(key_id, alg, "/s")
    for bad in ((0, "ML-DSA-65", "/s"), (1 << 32, "ML-DSA-65", "/s"), (1, "AES-256", "/s"),
                (1, "ML-DSA-65", "/" + "s" * 107), (1, "ML-DSA-65", "")):
        with pytest.raises(ValueError):
            keyref.to_der(*bad)


def _check_key_reference(key_id: int, alg: str, sock: str) -> None:
    from wvds.est_service import keyref
    text = keyref.to_pem(key_id, alg, sock)
    lines = text.splitlines()
    assert lines[0] == (f"WvdS crypto_service key reference (no key material): key 0x{key_id:08x}, "
                        f"{keyref.reference_algorithm(alg)}, socket {sock}")
    assert lines[1] == "-----BEGIN WVDS KEY REFERENCE-----" and lines[-1] == "-----END WVDS KEY REFERENCE-----"
    assert all(len(line) == 64 for line in lines[2:-2]) and 0 < len(lines[-2]) <= 64
    der = base64.b64decode("".join(lines[2:-1]))
    assert der == keyref.to_der(key_id, alg, sock)
    ref = _KeyRef.load(der, strict=True)
    assert ref.dump(force=True) == der  # canonical DER: re-encoding gives the same bytes
    assert ref.native == {"format": "WVDS-KEYREF-1", "key_id": key_id, "socket": sock,
                          "algorithm": {"EC-P-256": "ECDSA-P256", "EC-P-384": "ECDSA-P384"}.get(alg, alg)}


def test_config_needs_a_trust_source(tmp_path):
    doc = _base(tmp_path)
    del doc["servers"]["s"]["trust_anchor"]
    with pytest.raises(ConfigError, match="trust_anchor"):
        config.parse(doc)
    doc["servers"]["s"]["bootstrap_ca_fingerprint"] = "AB:" * 31 + "AB"
    assert config.parse(doc).servers["s"].bootstrap_ca_fingerprint == "ab" * 32


def test_check_config_cli(tmp_path):
    import subprocess
    import sys
    from support.targets import ROOT
    doc = _base(tmp_path)
    (tmp_path / "ok.json").write_text(json.dumps(doc))
    doc["certificates"][0]["key_algorithm"] = "nope"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "wvds.est_service", "--config", str(tmp_path / "ok.json"),
                         "check-config"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "wvds.est_service", "--config", str(tmp_path / "bad.json"),
                          "once"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "key_algorithm" in bad.stderr


def test_backoff_doubles_with_jitter_and_is_capped():
    import random
    from wvds.est_service.renewal import backoff_delay
    rnd = random.Random(1)
    for n, upper in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (30, 100), (1000, 100)):
        for _ in range(20):
            d = backoff_delay(n, 10, 100, rnd=rnd)
            assert upper / 2 <= d <= upper, (n, d)
    assert backoff_delay(1, 10, 100, auth_failure=True, rnd=rnd) >= 40
    assert backoff_delay(1, 10, 30, auth_failure=True, rnd=rnd) == 30


def test_store_commit_and_repair_after_interrupted_commit(tmp_path):
    import os
    import shutil
    from wvds.est_service.store import CertStore
    from wvds.est_service.x509 import Cert
    store = CertStore(str(tmp_path / "device"))
    certs = [Cert(_cert().public_bytes(serialization.Encoding.DER)) for _ in range(3)]
    store.commit(certs[0], [], 11, "ML-DSA-65", "est:device")
    store.commit(certs[1], [], 12, "ML-DSA-65", "est:device")
    assert store.current().cert == certs[1] and store.previous().key_id == 11
    # an interrupted third commit: written and renamed, the link not yet switched; plus temp leftovers
    store.commit(certs[2], [], 13, "ML-DSA-65", "est:device")
    os.replace(store.current_link, str(tmp_path / "link3"))
    os.symlink("gen-000002", store.current_link)
    shutil.copytree(tmp_path / "device" / "gen-000003", tmp_path / "device" / "gen-000004.tmp")
    os.symlink("gen-000003", store.current_link + ".new")
    (tmp_path / "device" / "state.json.tmp.123").write_text("{")
    assert store.repair() == [13]
    assert sorted(os.listdir(tmp_path / "device")) == ["current", "gen-000002"]  # gen 1 went with commit 3
    assert store.current().key_id == 12 and store.current().cert == certs[1]
    # the next commit prunes the generation before the previous one
    store.commit(certs[2], [], 14, "ML-DSA-65", "est:device")
    assert sorted(os.listdir(tmp_path / "device")) == ["current", "gen-000002", "gen-000003"]


def test_store_writes_a_key_reference_per_generation(tmp_path):
    """key.ref.pem is part of the generation (written with it, before the switch); a generation without
    one (committed by an older version), or naming another socket, gets it from key_reference()."""
    import os
    from wvds.est_service import keyref
    from wvds.est_service.store import CertStore
    from wvds.est_service.x509 import Cert
    store = CertStore(str(tmp_path / "device"))
    certs = [Cert(_cert().public_bytes(serialization.Encoding.DER)) for _ in range(2)]
    first = store.commit(certs[0], [], 0x8123ABCD, "EC-P-256", "est:device", crypto_socket="/run/a.sock")
    gen1 = tmp_path / "device" / "gen-000001"
    assert sorted(os.listdir(gen1)) == ["cert.pem", "chain.pem", "key.json", "key.ref.pem"]
    assert (gen1 / "key.ref.pem").read_text() == keyref.to_pem(0x8123ABCD, "EC-P-256", "/run/a.sock")
    assert json.loads((gen1 / "key.json").read_text())["crypto_service_socket"] == "/run/a.sock"
    assert store.key_reference(first, "/run/a.sock") == str(gen1 / "key.ref.pem")
    second = store.commit(certs[1], [], 7, "ML-DSA-65", "est:device")  # as an older version did: no reference
    gen2 = tmp_path / "device" / "gen-000002"
    assert not (gen2 / "key.ref.pem").exists()
    path = store.key_reference(second, "/run/b.sock")
    assert path == str(gen2 / "key.ref.pem") and open(path).read() == keyref.to_pem(7, "ML-DSA-65", "/run/b.sock")
    store.key_reference(first, "/run/b.sock")  # crypto_service moved: the reference follows the configuration
    assert "socket /run/b.sock" in (gen1 / "key.ref.pem").read_text()
    assert not [n for d in (gen1, gen2) for n in os.listdir(d) if ".tmp" in n]
    (gen2 / "key.ref.pem.tmp.4242").write_text("half")  # a rewrite interrupted by a crash
    store.repair()
    assert sorted(os.listdir(gen2)) == ["cert.pem", "chain.pem", "key.json", "key.ref.pem"]


@pytest.mark.parametrize("problem", ["group-readable", "other-owner", "symlink", "directory"])
def test_secret_files_are_checked_like_the_key_store_secret(tmp_path, problem):
    """est_service shares group wvds with every crypto client: its password file and client key must be
    regular files of its own user (or root) that group and others cannot read (wvds.private_file)."""
    import os

    from wvds.est_service.http import ClientIdentity, _load_identity
    real = tmp_path / "secret"
    real.write_text("est-pass\n")
    real.chmod(0o600)
    path = tmp_path / "configured"
    if problem == "group-readable":
        real.chmod(0o640)
        path = real
    elif problem == "other-owner":
        if os.geteuid() != 0:
            pytest.skip("chown needs root")
        os.chown(real, 65534, 65534)
        path = real
    elif problem == "symlink":
        path.symlink_to(real)
    else:
        path.mkdir()
    creds = config.Credentials(username="u", password_file=str(path))
    with pytest.raises(ConfigError, match="password_file"):
        creds.password()
    import ssl
    identity = ClientIdentity(str(tmp_path / "cert.pem"), str(path), "test")
    with pytest.raises(ConfigError, match="client_key"):
        _load_identity(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), identity)


def test_a_private_password_file_is_read(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("est-pass\r\n")
    pw.chmod(0o600)
    assert config.Credentials(username="u", password_file=str(pw)).password() == "est-pass"


@pytest.mark.parametrize("algorithm,response", [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_digest_answers_the_rfc_7616_example(algorithm, response):
    """RFC 7616 section 3.9.1: the published responses for Mufasa / "Circle of Life"."""
    from wvds.est_service import digest
    header = (f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
              'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
              'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
    (scheme, params), = digest.challenges([header])
    assert scheme == "digest" and params["realm"] == "http-auth@example.org"
    value = digest.authorization(params, "GET", "/dir/index.html", "Mufasa", "Circle of Life", allow_md5=True,
                                 cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    assert f'response="{response}"' in value and "nc=00000001" in value and "qop=auth" in value
    if algorithm == "MD5":
        with pytest.raises(digest.DigestError, match="allow_md5_digest"):
            digest.authorization(params, "GET", "/", "u", "p", allow_md5=False)


def test_several_challenges_are_described():
    from wvds.est_service import digest
    text = digest.describe(['Digest realm="est", nonce="n", algorithm=SHA-256, qop="auth", Basic realm="est"'])
    assert text == 'Digest (realm "est", SHA-256), Basic (realm "est")'


@pytest.mark.parametrize("suffix", [b"\x00", b"\x00\x00", b"\r\n\x00", b"\x00\r\n"])
def test_bodies_with_a_c_string_terminator(suffix):
    der = _cert().public_bytes(serialization.Encoding.DER)
    text = base64.b64encode(der)
    body = b"\r\n".join(text[i:i + 64] for i in range(0, len(text), 64)).rstrip(b"=") + suffix
    assert pkcs7.decode_body(body, "t") == der


def test_a_huge_www_authenticate_header_costs_no_time():
    """The challenge parser is quadratic in a value's length, and a 401 can come before the server is
    authenticated (bootstrap): values over 2 KiB, and headers past the 8th, are not parsed."""
    import time
    from wvds.est_service import digest
    started = time.monotonic()
    assert digest.describe(["Digest " + "a" * 65536] * 100) == "no WWW-Authenticate challenge"
    assert time.monotonic() - started < 1
    assert digest.challenges(["x"] * 8 + ['Digest realm="late"']) == [("x", {})] * 8


def test_path_search_through_ca_certificates_that_issue_each_other_is_bounded(monkeypatch):
    """A hostile server's CA certificates, one name and one key, each verifying under every other: the
    search gives up after a budget of signature checks instead of trying every ordering (it took minutes)."""
    import time
    from wvds.est_service import chain
    from wvds.est_service.errors import ValidationError
    from wvds.est_service.x509 import Cert
    key = ec.generate_private_key(ec.SECP256R1())
    evil = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Evil")])
    now = dt.datetime.now(dt.timezone.utc)

    def make(serial: int, subject: x509.Name, ca: bool) -> Cert:
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(evil).public_key(
            key.public_key() if ca else ec.generate_private_key(ec.SECP256R1()).public_key())
            .serial_number(serial).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        return Cert(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))

    leaf = make(1, x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "device")]), False)
    pool = [make(100 + i, evil, True) for i in range(12)]
    anchor = Cert(_cert().public_bytes(serialization.Encoding.DER))
    monkeypatch.setattr(chain, "cert_signed_by", lambda cert, issuer: True)  # as if every signature verified
    started = time.monotonic()
    with pytest.raises(ValidationError):
        chain.validate(leaf, pool, [anchor], now)
    assert time.monotonic() - started < 2
    with pytest.raises(ValidationError, match="at most"):
        chain.validate(leaf, [make(200 + i, evil, True) for i in range(chain.MAX_POOL + 1)], [anchor], now)


def test_two_certificates_may_not_share_a_key_label(tmp_path):
    base = _base(tmp_path, key_label="shared")
    base["certificates"].append({"name": "other", "subject": {"CN": "y"}, "key_label": "shared"})
    with pytest.raises(ConfigError, match="key_label 'shared' is used by more than one certificate"):
        config.parse(base)
