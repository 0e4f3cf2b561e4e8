"""scripts/extract_certs.py: the OEM's certificate tool, run as the OEM runs it (a stock Python without
pyca/cryptography; its cryptography done by the delivered openssl, or by pyca/cryptography where present)."""
from __future__ import annotations

import ast
import base64
import json
import os
import random
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from support.targets import HOST, ROOT

TOOL = ROOT / "scripts" / "extract_certs.py"
STOCK_PYTHON = "/usr/bin/python3"  # Debian's, without the venv: -I -S = standard library only
OPENSSL = HOST.openssl_root / "bin" / "openssl"
WITH_OPENSSL = {"WVDS_OPENSSL": str(OPENSSL)}  # the build's openssl, as the delivery's bin/<arch>/openssl
WITH_PYCA = {"python": [sys.executable], "env": {"PATH": "/nonexistent", "WVDS_OPENSSL": "none"}}  # the test venv's
WITH_NEITHER = {"env": {"PATH": "/nonexistent", "WVDS_OPENSSL": "none"}}  # the stock Python has no pyca (-S)


def tool(*args, stdin: bytes | None = None, env: dict | None = None, python: list | None = None, script=TOOL):
    cmd = (python or [STOCK_PYTHON, "-I", "-S"]) + [str(script), *map(str, args)]
    e = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSSL_", "WVDS_"))}
    e["WVDS_OPENSSL"] = "none"  # hermetic: OpenSSL (signatures, PKCS#12) only where a test names one
    e.update(env or {})
    return subprocess.run(cmd, input=stdin, capture_output=True, env=e, timeout=120)


def ok(*args, **kw) -> str:
    r = tool(*args, **kw)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    return r.stdout.decode()


def fail(*args, code: int = 1, **kw) -> str:
    r = tool(*args, **kw)
    err = r.stderr.decode()
    assert r.returncode == code, (r.returncode, r.stdout.decode(), err)
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def certs(unpacked):
    return unpacked / "certs"


def test_runs_on_python_3_9_syntax_and_stdlib_only():
    ast.parse(TOOL.read_text(), feature_version=(3, 9))
    tree = ast.parse(TOOL.read_text())
    top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert top <= set(sys.stdlib_module_names), top - set(sys.stdlib_module_names)  # pyca only inside a try


def test_no_cryptography_of_its_own():
    """No cipher, KDF or MAC written here: hashlib only for the fingerprints shown, hmac not at all."""
    tree = ast.parse(TOOL.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "hmac" not in imported
    uses = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "hashlib"}
    assert uses == {"sha256", "sha1"}, uses
    assert "ctypes" not in imported  # nor a way around the openssl command


def test_show_the_test_pki(certs):
    out = ok("show", certs / "service_cert.pem", certs / "root_ca.der", certs / "ecdsa" / "client_cert.pem")
    assert out.count("O=WvdS TEST ONLY") >= 3
    assert "key:        ML-DSA-65 (1952-byte public key)" in out
    assert "signature:  ML-DSA-65" in out
    assert "key:        EC P-256 (65-byte public key)" in out and "ecdsa-with-SHA256" in out
    assert "alt. names: DNS:localhost, IP:127.0.0.1, IP:::1" in out
    assert "ext. usage: serverAuth" in out and "ext. usage: clientAuth" in out
    assert "(valid now)" in out and "(self-issued)" in out
    der = (certs / "service_cert.der").read_bytes()
    fp = x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex().upper()
    assert ":".join(fp[i:i + 2] for i in range(0, 64, 2)) in out


def test_show_json(certs):
    doc = json.loads(ok("show", "--json", certs / "root_ca.pem"))
    c = doc[0]["certificates"][0]
    assert c["ca"] is True and c["self_issued"] is True and c["key"] == "ML-DSA-65"
    assert c["key_usage"] == ["keyCertSign", "cRLSign"]


def test_test_pki_chains_verify_with_the_delivered_openssl(certs, unpacked):
    """Run from the delivery, the tool finds bin/<arch>/openssl beside its own directory."""
    delivered = unpacked / "scripts" / "extract_certs.py"
    lookup = {"WVDS_OPENSSL": ""}  # the tool's own search (the delivery's bin/ comes before /opt/wvds/bin)
    for chain in (certs, certs / "ecdsa"):
        for leaf in ("service_cert.pem", "client_cert.pem"):
            out = ok("verify", "--ca", chain / "root_ca.pem", chain / leaf, script=delivered, env=lookup)
            assert f"signatures checked by {delivered.parent}/../bin/" in out and ": OK" in out
    r = tool("verify", "--ca", certs / "ecdsa" / "root_ca.pem", certs / "service_cert.pem", script=delivered,
             env=lookup)
    assert r.returncode == 1 and b"does not reach" in r.stdout and b"verification FAILED" in r.stdout


def test_verify_catches_a_forged_signature(certs, tmp_path):
    """Same names and extensions, other key: only the signature check can tell."""
    forged = bytearray((certs / "service_cert.der").read_bytes())
    forged[-40] ^= 0x01  # inside the signature
    (tmp_path / "forged.der").write_bytes(bytes(forged))
    r = tool("verify", "--ca", certs / "root_ca.pem", tmp_path / "forged.der", "--openssl", OPENSSL)
    assert r.returncode == 1 and b"FAILED" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("how", ["nothing-found", "--openssl-none", "env-none"])
def test_verify_without_openssl_says_signatures_were_not_checked(certs, how):
    args, env = [], {"PATH": "/nonexistent", "WVDS_OPENSSL": ""}
    if how == "--openssl-none":
        args = ["--openssl", "none"]
    elif how == "env-none":
        env["WVDS_OPENSSL"] = "none"
    elif os.path.exists("/opt/wvds/bin/openssl"):  # an installed delivery is found there, by design
        pytest.skip("an installed delivery provides /opt/wvds/bin/openssl")
    r = tool("verify", "--ca", certs / "root_ca.pem", certs / "service_cert.pem", *args, env=env)
    assert r.returncode == 3 and b"SIGNATURES WERE NOT CHECKED" in r.stdout


def test_split_and_convert(certs, tmp_path):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join((certs / n).read_bytes() for n in ("service_cert.pem", "root_ca.pem")))
    out = ok("split", bundle, "-o", tmp_path / "parts")
    assert (tmp_path / "parts" / "01-localhost.pem").exists() and "02-WvdS_TEST_ONLY" in out
    ok("split", bundle, "-o", tmp_path / "der", "--der")
    assert (tmp_path / "der" / "01-localhost.der").read_bytes() == (certs / "service_cert.der").read_bytes()
    ok("convert", certs / "root_ca.pem", tmp_path / "root.der")
    assert (tmp_path / "root.der").read_bytes() == (certs / "root_ca.der").read_bytes()
    ok("convert", certs / "root_ca.der", tmp_path / "root.pem")
    assert (tmp_path / "root.pem").read_bytes() == (certs / "root_ca.pem").read_bytes()
    err = fail("convert", bundle, tmp_path / "x.der")
    assert "holds 2 certificates" in err
    ok("convert", bundle, tmp_path / "x.der", "--index", "2")
    assert (tmp_path / "x.der").read_bytes() == (certs / "root_ca.der").read_bytes()


# --- EST responses (PKCS#7) from the test EST server ----------------------------------------------------

@pytest.fixture(scope="module")
def est_responses(tmp_path_factory):
    """Bodies of /cacerts and /simpleenroll answers of tests/support/est_server.py, as they come off the wire."""
    from support.est import EstServer
    work = tmp_path_factory.mktemp("est")
    server = EstServer(work).start()
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw-extract-0001")]))
               .sign(key, hashes.SHA256()))
        fetch = (
            "import base64, http.client, ssl, sys\n"
            "c = http.client.HTTPSConnection('localhost', int(sys.argv[1]),\n"
            "                                 context=ssl.create_default_context(cafile=sys.argv[2]))\n"
            "c.request('GET', '/.well-known/est/cacerts')\n"
            "cacerts = c.getresponse().read()\n"
            "c.request('POST', '/.well-known/est/simpleenroll', body=sys.stdin.buffer.read(),\n"
            "          headers={'Content-Type': 'application/pkcs10',\n"
            "                   'Authorization': 'Basic ' + base64.b64encode(b'est:est-pass').decode()})\n"
            "sys.stdout.buffer.write(cacerts + b'\\n--\\n' + c.getresponse().read())\n")
        env = HOST.env(LD_LIBRARY_PATH=str(HOST.openssl_root / "lib"))  # the server's ML-DSA TLS certificate
        bodies = []
        for whitespace in (False, True):
            server.control(whitespace=whitespace)
            r = subprocess.run([sys.executable, "-c", fetch, str(server.port), str(work / "pki" / "root.pem")],
                               input=base64.b64encode(csr.public_bytes(serialization.Encoding.DER)), env=env,
                               capture_output=True, timeout=60)
            assert r.returncode == 0, r.stderr.decode()
            bodies.append(r.stdout.split(b"\n--\n"))
        (cacerts, enroll), (cacerts_ws, _) = bodies
        root = x509.load_pem_x509_certificate((work / "pki" / "root.pem").read_bytes())
    finally:
        server.stop()
    return {"cacerts": cacerts, "enroll": enroll, "cacerts_ws": cacerts_ws, "root": root, "dir": work}


def test_est_cacerts_response_as_received(est_responses, tmp_path):
    body = tmp_path / "cacerts.b64"
    body.write_bytes(est_responses["cacerts"])
    out = ok("show", body)
    assert "base64 PKCS#7, 1 certificate" in out and "CN=WvdS Test Root CA" in out and "ML-DSA-65" in out
    fp = est_responses["root"].fingerprint(hashes.SHA256()).hex().upper()
    assert ":".join(fp[i:i + 2] for i in range(0, 64, 2)) in out
    ws = tmp_path / "cacerts-rfc8951.b64"  # CRLF and blanks inside the base64 (RFC 8951)
    ws.write_bytes(est_responses["cacerts_ws"])
    assert b"\r\n" in est_responses["cacerts_ws"]
    assert "CN=WvdS Test Root CA" in ok("show", ws)
    ok("convert", body, tmp_path / "root.pem")
    assert x509.load_pem_x509_certificate((tmp_path / "root.pem").read_bytes()) == est_responses["root"]
    out = ok("show", "-", stdin=est_responses["cacerts"])  # from stdin, as piped from curl
    assert "CN=WvdS Test Root CA" in out


def test_est_enrollment_response(est_responses, tmp_path):
    body = tmp_path / "enroll.b64"
    body.write_bytes(est_responses["enroll"])
    out = ok("show", body)
    assert "CN=gw-extract-0001" in out and "key:        EC P-256" in out
    ok("convert", body, tmp_path / "device.pem")
    r = tool("verify", "--ca", est_responses["dir"] / "pki" / "root.pem", tmp_path / "device.pem",
             "--openssl", OPENSSL)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pkcs7_pem_and_der(certs, tmp_path):
    chain = [x509.load_pem_x509_certificate((certs / n).read_bytes()) for n in ("service_cert.pem", "root_ca.pem")]
    (tmp_path / "p7.pem").write_bytes(pkcs7.serialize_certificates(chain, serialization.Encoding.PEM))
    (tmp_path / "p7.der").write_bytes(pkcs7.serialize_certificates(chain, serialization.Encoding.DER))
    for f in ("p7.pem", "p7.der"):
        out = ok("show", tmp_path / f)
        assert "PKCS#7, 2 certificates" in out and "CN=localhost" in out
    ok("split", tmp_path / "p7.der", "-o", tmp_path / "split")
    assert len(list((tmp_path / "split").iterdir())) == 2


# --- PKCS#12 --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def p12_files(certs, tmp_path_factory):
    d = tmp_path_factory.mktemp("p12")
    key = serialization.load_pem_private_key((certs / "ecdsa" / "service_key.pem").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((certs / "ecdsa" / "service_cert.pem").read_bytes())
    extra = [x509.load_pem_x509_certificate((certs / n).read_bytes()) for n in ("ecdsa/root_ca.pem", "root_ca.pem")]
    pw = "s3cret pässword".encode()
    files = {
        "aes": serialization.BestAvailableEncryption(pw),
        "aes-sha384-mac": serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(3000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA384()).build(pw),
        "legacy-3des": serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(3000)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1()).build(pw),
        "plain": serialization.NoEncryption(),
    }
    for name, enc in files.items():
        (d / f"{name}.p12").write_bytes(pkcs12.serialize_key_and_certificates(b"device", key, cert, extra, enc))
    (d / "pw").write_text(pw.decode() + "\n")
    # what pyca does not write: PBMAC1 (RFC 9579), RC2 (OpenSSL's legacy provider), no MAC and no encryption
    chain = d / "chain.pem"
    chain.write_bytes(b"".join((certs / n).read_bytes() for n in ("ecdsa/root_ca.pem", "root_ca.pem")))
    export = ["pkcs12", "-export", "-in", certs / "ecdsa" / "service_cert.pem", "-inkey",
              certs / "ecdsa" / "service_key.pem", "-certfile", chain, "-name", "device"]
    env = HOST.env(OPENSSL_MODULES=str(HOST.openssl_root / "lib" / "ossl-modules"), P=pw.decode())
    for name, opts in (("pbmac1", ["-pbmac1_pbkdf2", "-passout", "env:P"]),
                       ("legacy-rc2", ["-legacy", "-passout", "env:P"]),
                       ("unprotected", ["-nomac", "-keypbe", "NONE", "-certpbe", "NONE", "-passout", "pass:"])):
        HOST.run(OPENSSL, *export, *opts, "-out", d / f"{name}.p12", env=env)
    return d


def test_the_stock_python_has_no_pyca():
    """What the tests below rely on to run the tool where pyca/cryptography is absent."""
    r = subprocess.run([STOCK_PYTHON, "-I", "-S", "-c", "import cryptography"], capture_output=True)
    assert r.returncode != 0


@pytest.mark.parametrize("backend", ["openssl", "pyca"])
@pytest.mark.parametrize("name", ["aes", "aes-sha384-mac", "pbmac1", "plain"])
def test_pkcs12_with_openssl_or_pyca(p12_files, name, backend):
    args = ["--password-file", p12_files / "pw"] if name != "plain" else []
    kw = {"env": WITH_OPENSSL} if backend == "openssl" else WITH_PYCA
    out = ok("show", *args, p12_files / f"{name}.p12", **kw)
    assert "PKCS#12, 3 certificates" in out
    assert "contains a private key named 'device' (not extracted)" in out
    assert "CN=localhost" in out and "ML-DSA-65" in out and "EC P-256" in out
    assert "integrity (MAC) checked" in out
    assert f"via {OPENSSL if backend == 'openssl' else 'pyca/cryptography'}" in out


def test_pkcs12_runs_openssl_pkcs12_without_keys_and_without_the_password_on_its_command_line(p12_files, tmp_path):
    log = tmp_path / "argv"
    wrapper = tmp_path / "openssl"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {OPENSSL} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    out = ok("show", "--password-file", p12_files / "pw", p12_files / "aes.p12", env={"WVDS_OPENSSL": str(wrapper)})
    assert f"decrypted via {wrapper}" in out
    calls = log.read_text().splitlines()
    assert any(c.startswith("pkcs12 -nokeys") for c in calls), calls
    assert "pässword" not in log.read_text()


def test_pkcs12_without_openssl_or_pyca_fails_clearly(p12_files):
    err = fail("show", "--password-file", p12_files / "pw", p12_files / "aes.p12", **WITH_NEITHER)
    assert "needs OpenSSL" in err and "pyca/cryptography" in err and "neither was found" in err
    ok("show", p12_files / "unprotected.p12", **WITH_NEITHER)  # no MAC, nothing encrypted: read here alone


def test_pkcs12_without_openssl_found_anywhere(p12_files):
    """No --openssl, no $WVDS_OPENSSL, no openssl on PATH, no delivery around the script: the same message."""
    if os.path.exists("/opt/wvds/bin/openssl"):  # an installed delivery is found there, by design
        pytest.skip("an installed delivery provides /opt/wvds/bin/openssl")
    err = fail("show", "--password-file", p12_files / "pw", p12_files / "aes.p12",
               env={"PATH": "/nonexistent", "WVDS_OPENSSL": ""})
    assert "needs OpenSSL" in err and "neither was found" in err


def test_pkcs12_password_from_the_environment(p12_files, tmp_path):
    ok("split", p12_files / "aes.p12", "-o", tmp_path / "out",
       env={"WVDS_P12_PASSWORD": "s3cret pässword", **WITH_OPENSSL})
    assert sorted(p.name for p in (tmp_path / "out").iterdir())[0] == "01-localhost.pem"


@pytest.mark.parametrize("backend", ["openssl", "pyca"])
def test_pkcs12_wrong_password(p12_files, tmp_path, backend):
    (tmp_path / "bad").write_text("wrong\n")
    kw = {"env": WITH_OPENSSL} if backend == "openssl" else WITH_PYCA
    err = fail("show", "--password-file", tmp_path / "bad", p12_files / "aes.p12", **kw)
    assert "wrong password" in err


def test_pkcs12_legacy_encryption(p12_files):
    """3DES: OpenSSL's default provider and pyca decrypt it. RC2: only OpenSSL's legacy provider (not in the
    delivery) or pyca; without either, the message names the algorithm and says how to re-export."""
    for kw in ({"env": WITH_OPENSSL}, WITH_PYCA):
        out = ok("show", "--password-file", p12_files / "pw", p12_files / "legacy-3des.p12", **kw)
        assert "PKCS#12, 3 certificates" in out and "CN=localhost" in out
    err = fail("show", "--password-file", p12_files / "pw", p12_files / "legacy-rc2.p12", env=WITH_OPENSSL)
    assert "pbeWithSHAAnd40BitRC2-CBC" in err and "re-export" in err
    out = ok("show", "--password-file", p12_files / "pw", p12_files / "legacy-rc2.p12",
             python=[sys.executable], env=WITH_OPENSSL)  # the test venv has pyca/cryptography
    assert "via pyca/cryptography" in out and "CN=localhost" in out


# --- bad input: one line, non-zero, never a traceback --------------------------------------------------

@pytest.mark.parametrize("content,message", [
    (b"", "empty input"),
    (b"hello world, not a certificate\n", "not a certificate, PKCS#7 or PKCS#12"),
    (b"-----BEGIN CERTIFICATE-----\nMIIB!!!\n-----END CERTIFICATE-----\n", "invalid base64"),
    (b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n", "PEM armour without a complete block"),
    (b"\x30\x82\x10\x00\x30\x03", "truncated"),
    (b"\x30\x03\x02\x01\x05", "neither a certificate"),
    (b"\x30\x0b\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01", "not SignedData"),
    (random.Random(64).randbytes(64) + b"\x00", None),  # fixed bytes: ids must not vary between runs
])
def test_bad_input(tmp_path, content, message):
    f = tmp_path / "input"
    f.write_bytes(content)
    err = fail("show", f)
    assert err.startswith("extract_certs.py: error: ") and err.count("\n") == 1, err
    if message:
        assert message in err, err


def test_truncated_certificates_and_missing_files(certs, tmp_path):
    der = (certs / "root_ca.der").read_bytes()
    for cut in (10, 100, len(der) // 2, len(der) - 1):
        (tmp_path / "cut.der").write_bytes(der[:cut])
        fail("show", tmp_path / "cut.der")
    assert "file not found" in fail("show", tmp_path / "nope.pem")
    assert "is a directory" in fail("show", tmp_path)
    assert "no certificates" in fail("show", certs / "service_key.pem")
    fail("show", code=2)
    fail("bogus-command", code=2)
