"""A small EST server (RFC 7030) for the tests, with switchable misbehaviour.

No EST server exists in the package registries reachable here, so the tests bring
their own. It is *not* product code: it uses pyca/cryptography (its own OpenSSL
inside) to run a CA, and Python's ssl module on our OpenSSL 3.6 (default
provider, no FIPS config) for TLS 1.3 with ML-DSA certificates and the hybrid
ML-KEM groups.

Run as a process (the tests do, on loopback):

    python tests/support/est_server.py --dir WORKDIR [--port 0] [--ca-alg ML-DSA-65|EC-P-256]
           [--tls-key-alg ML-DSA-65|EC-P-256] [--tls-max 1.3|1.2] [--groups G1:G2]

It creates WORKDIR/pki/ once (root CA, TLS certificate, a second "wrong" CA, a
bootstrap CA with a client certificate, a successor root for rollover), writes
WORKDIR/ready.json (port, fingerprints, file paths), then serves:

  GET  /.well-known/est[/<label>]/cacerts         certs-only PKCS#7 of the CA certificates
  GET  .../csrattrs                               204, or CsrAttrs from control.json
  POST .../simpleenroll, .../simplereenroll       PKCS#10 in, certs-only PKCS#7 out

Authentication: HTTP Basic (users from control.json, default est/est-pass) or a
TLS client certificate issued by the bootstrap CA (simpleenroll) or by the device
CA with the CSR's subject (simplereenroll). A client certificate is verified in the
handshake (chain to the root, the bootstrap CA or the rollover root; validity; the
CertificateVerify signature): a connection whose client certificate does not verify
never gets this far. `require_client_cert` lists the operations that accept only a
client certificate; each enrollment's log entry says what authenticated it
(`authenticated_by`: "client_cert" or "basic") and which client certificate it was.

Misbehaviour is read from WORKDIR/control.json on every request (see `DEFAULTS`);
every request is appended to WORKDIR/requests.jsonl for the tests to inspect.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import email.utils
import hashlib
import http.server
import json
import os
import socketserver
import ssl
import sys
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULTS = {
    "users": {"est": "est-pass"},
    "status": {},  # operation -> forced HTTP status (401, 403, 500, ...)
    "pending": {"count": 0, "retry_after": "1"},  # 202 this many times per CSR; "N" seconds or "date:N"
    "no_retry_after": False,  # 202 without a Retry-After header
    "delay_s": {},  # operation -> seconds to sleep before answering
    "generation": 0,  # EstServer.control's count: each logged request carries the one it arrived under
    "malformed": [],  # operations answered with a body that is not PKCS#7
    "wrong_key": False,  # issue for another public key
    "wrong_ca": False,  # issue from the other CA
    "wrong_subject": False,  # issue with another subject
    "lifetime_s": 3600,  # validity of issued certificates
    "whitespace": False,  # base64 bodies with CRLF and spaces inside (RFC 8951 leniency)
    "csrattrs": None,  # None: 204; {"kind": "legacy"|"template", ...}
    "rollover": False,  # issue from the successor root; /cacerts carries the rollover certificates
    "require_client_cert": [],  # operations that need a TLS client certificate (not Basic)
    # -- behaviours of EST servers in the field (docs/est-interop.md) --
    "subject_policy": None,  # "cn_only": the CA keeps only the CN; "reorder": RDNs reversed; "add_o": adds O=
    "san_policy": None,  # "drop": issued without subjectAltName; "add": one more DNS name
    "key_usage": None,  # e.g. ["key_encipherment"]: the keyUsage the CA sets (None: none)
    "eku": "client_auth",  # "server_auth": an extendedKeyUsage without clientAuth
    "nul_terminated": False,  # a C server: base64 bodies end in NUL, counted in Content-Length
    "http_auth": "basic",  # "digest": HTTP Digest (RFC 7616) instead of Basic
    "digest_algorithm": "MD5",  # or "SHA-256"
    "http_auth_with_cert": False,  # HTTP authentication demanded even with a valid TLS client certificate
    "chunked": False,  # responses with Transfer-Encoding: chunked
    "extra_certs": False,  # the enrollment's PKCS#7 also carries the CA and an unrelated certificate
    "ber_lengths": False,  # the PKCS#7's outer SEQUENCE with a non-minimal (BER) length
    "refuse_mldsa": None,  # a toolkit that cannot parse ML-DSA CSRs: 400 with this text
}
OPS = ("cacerts", "csrattrs", "simpleenroll", "simplereenroll", "serverkeygen", "fullcmc")
UTC = dt.timezone.utc


def _now() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


def _gen_key(alg: str):
    return {"ML-DSA-44": mldsa.MLDSA44PrivateKey.generate, "ML-DSA-65": mldsa.MLDSA65PrivateKey.generate,
            "ML-DSA-87": mldsa.MLDSA87PrivateKey.generate,
            "EC-P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
            "EC-P-384": lambda: ec.generate_private_key(ec.SECP384R1())}[alg]()


def _hash_for(key):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return hashes.SHA384() if key.curve.key_size == 384 else hashes.SHA256()
    return None  # ML-DSA: pure, no prehash


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "WvdS Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ski(pub) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(pub)


def make_ca(cn: str, key, issuer_name=None, issuer_key=None, days: float = 30, not_before=None):
    """A CA certificate; self-signed unless issuer_name/issuer_key are given (rollover links)."""
    nb = not_before or _now() - dt.timedelta(hours=1)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer_name or _name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(nb).not_valid_after(nb + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
         .add_extension(_ski(key.public_key()), critical=False))
    signer = issuer_key or key
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    return b.sign(signer, _hash_for(signer))


KEY_USAGE = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")


def issue(ca_cert, ca_key, subject: x509.Name, pub, lifetime_s: float, san=None, eku=None, not_before=None,
          key_usage=None):
    nb = not_before or _now() - dt.timedelta(seconds=1)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(pub)
         .serial_number(x509.random_serial_number()).not_valid_before(nb)
         .not_valid_after(nb + dt.timedelta(seconds=lifetime_s + 1))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(_ski(pub), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if san is not None:
        b = b.add_extension(san, critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if key_usage:
        b = b.add_extension(x509.KeyUsage(**{k: k in key_usage for k in KEY_USAGE}), critical=True)
    return b.sign(ca_key, _hash_for(ca_key))


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), None)


class Pki:
    """Every key and certificate the server uses, created once under <dir>/pki and reused on restart."""

    def __init__(self, directory: Path, ca_alg: str, tls_key_alg: str):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / "root.pem").exists():
            self._create(ca_alg, tls_key_alg)
        ld = lambda n: x509.load_pem_x509_certificate((directory / n).read_bytes())  # noqa: E731
        self.root, self.root_key = ld("root.pem"), _load_key(directory / "root.key")
        self.new_root, self.new_root_key = ld("new_root.pem"), _load_key(directory / "new_root.key")
        self.new_with_old, self.old_with_new = ld("new_with_old.pem"), ld("old_with_new.pem")
        self.wrong, self.wrong_key = ld("wrong_root.pem"), _load_key(directory / "wrong_root.key")
        self.boot_ca, self.boot_ca_key = ld("bootstrap_ca.pem"), _load_key(directory / "bootstrap_ca.key")
        self.tls_cert, self.tls_key = ld("tls.pem"), _load_key(directory / "tls.key")

    def _create(self, ca_alg: str, tls_key_alg: str) -> None:
        d = self.dir
        root_key = _gen_key(ca_alg)
        root = make_ca("WvdS Test Root CA", root_key)
        new_root_key = _gen_key(ca_alg)
        new_root = make_ca("WvdS Test Root CA", new_root_key, days=60)
        new_with_old = make_ca("WvdS Test Root CA", new_root_key, issuer_name=root.subject, issuer_key=root_key)
        old_with_new = make_ca("WvdS Test Root CA", root_key, issuer_name=new_root.subject, issuer_key=new_root_key)
        wrong_key = _gen_key(ca_alg)
        wrong = make_ca("WvdS Test Root CA", wrong_key)  # same name, other key: only the signature tells
        boot_key = _gen_key("EC-P-256")
        boot_ca = make_ca("WvdS Test Bootstrap CA", boot_key)
        client_key = _gen_key("EC-P-256")
        client = issue(boot_ca, boot_key, _name("bootstrap-device-0001"), client_key.public_key(), 30 * 86400,
                       eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        tls_key = _gen_key(tls_key_alg)
        # est.wvds.test: the name the QEMU guest (qemu/) reaches this server by, through QEMU's guestfwd
        san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("est.wvds.test"),
                                           x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))])
        tls = issue(root, root_key, _name("est.test"), tls_key.public_key(), 30 * 86400, san=san,
                    eku=[ExtendedKeyUsageOID.SERVER_AUTH])
        for name, obj in (("root.pem", root), ("root.key", root_key), ("new_root.pem", new_root),
                          ("new_root.key", new_root_key), ("new_with_old.pem", new_with_old),
                          ("old_with_new.pem", old_with_new), ("wrong_root.pem", wrong), ("wrong_root.key", wrong_key),
                          ("bootstrap_ca.pem", boot_ca), ("bootstrap_ca.key", boot_key),
                          ("bootstrap_client.pem", client), ("bootstrap_client.key", client_key),
                          ("tls.pem", tls), ("tls.key", tls_key)):
            (d / name).write_bytes(_pem(obj))
            if name.endswith(".key"):
                (d / name).chmod(0o600)  # as a device keeps a private key (est_service checks)
        (d / "tls_chain.pem").write_bytes(_pem(tls) + _pem(root))

    def fingerprint(self, cert) -> str:
        return cert.fingerprint(hashes.SHA256()).hex()


def _b64(der: bytes, whitespace: bool) -> bytes:
    text = base64.b64encode(der)
    if not whitespace:
        return text
    lines = [text[i:i + 60] for i in range(0, len(text), 60)]
    return b"\r\n  ".join(lines) + b" \r\n"


def _certs_only(certs) -> bytes:
    return pkcs7.serialize_certificates(certs, serialization.Encoding.DER)


class State:
    def __init__(self, workdir: Path, pki: Pki):
        self.workdir, self.pki = workdir, pki
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}  # CSR sha256 -> enroll POSTs so far

    def control(self) -> dict:
        try:
            doc = json.loads((self.workdir / "control.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            doc = {}
        return {**DEFAULTS, **doc}

    def record(self, entry: dict) -> None:
        with self.lock, open(self.workdir / "requests.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "wvds-test-est/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: requests.jsonl has it all
        pass

    @property
    def st(self) -> State:
        return self.server.state

    def _op(self) -> str | None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:2] != [".well-known", "est"] or len(parts) not in (3, 4):
            return None
        self.label = parts[2] if len(parts) == 4 else None
        return parts[-1] if parts[-1] in OPS else None

    def _send(self, status: int, body: bytes = b"", ctype: str | None = None, headers: dict | None = None):
        ctl = getattr(self, "ctl", DEFAULTS)
        if ctl["nul_terminated"] and body and ctype and not ctype.startswith("text/"):
            body += b"\0"  # the C string's terminator, counted in Content-Length
        # In the log before the client sees a byte of the answer: a test that reads the log as soon as its
        # client has the answer finds the request there. (A request logged after the test has moved on
        # carries its generation: EstServer.requests leaves it out.)
        self.entry["status"] = status
        self._record()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if ctl["chunked"] and body:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 100):
                piece = body[i:i + 100]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

    def _client_cert(self):
        der = self.connection.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der) if der else None

    def _challenge(self, ctl) -> dict:
        if ctl["http_auth"] == "digest":
            nonce = base64.b64encode(os.urandom(12)).decode()
            return {"WWW-Authenticate": f'Digest realm="est", qop="auth", nonce="{nonce}", '
                                        f'algorithm={ctl["digest_algorithm"]}, opaque="wvds"'}
        return {"WWW-Authenticate": 'Basic realm="est"'}

    def _digest_user(self, ctl) -> str | None:
        """RFC 7616 check of an Authorization: Digest header (qop=auth); the user, "" if wrong, None if absent."""
        import re
        h = self.headers.get("Authorization", "")
        if not h.startswith("Digest "):
            return None
        p = {m.group(1): m.group(2).strip('"') for m in re.finditer(r'(\w+)=("[^"]*"|[^,\s]*)', h[7:])}
        algo = ctl["digest_algorithm"]
        hf = (lambda b: hashlib.md5(b).hexdigest()) if algo == "MD5" else (lambda b: hashlib.sha256(b).hexdigest())
        pw = ctl["users"].get(p.get("username", ""))
        if pw is None or p.get("algorithm") != algo or p.get("uri") != self.path or p.get("opaque") != "wvds":
            return ""
        ha1 = hf(f"{p['username']}:est:{pw}".encode())
        ha2 = hf(f"{self.command}:{p['uri']}".encode())
        want = hf(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}".encode())
        return p["username"] if p.get("response") == want else ""

    def _basic_user(self, ctl) -> str | None:
        if ctl["http_auth"] == "digest":
            return self._digest_user(ctl)
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return None
        try:
            user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if ctl["users"].get(user) == pw else ""

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, method: str):
        ctl = self.ctl = self.st.control()
        self.recorded = False  # one Handler serves every request of a kept-alive connection
        self.entry = {"ts": time.time(), "generation": ctl["generation"], "method": method, "path": self.path,
                      "tls": self.connection.version(),
                      "group": getattr(self.server, "group_of", lambda s: "")(self.connection)}
        try:
            op = self._op()
            self.entry["op"] = op
            self.entry["label"] = getattr(self, "label", None)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if op is None:
                return self._send(404, b"no such EST operation\n", "text/plain")
            delay = ctl["delay_s"].get(op, 0)
            if delay:
                time.sleep(delay)
            if op in ctl["status"]:
                code = int(ctl["status"][op])
                hdr = self._challenge(ctl) if code == 401 else None
                return self._send(code, f"forced status {code}\n".encode(), "text/plain", hdr)
            if op == "cacerts" and method == "GET":
                return self._cacerts(ctl)
            if op == "csrattrs" and method == "GET":
                return self._csrattrs(ctl)
            if op in ("simpleenroll", "simplereenroll") and method == "POST":
                return self._enroll(op, body, ctl)
            return self._send(501 if op in OPS else 404, b"not implemented\n", "text/plain")
        except (ConnectionError, ssl.SSLError):
            self.entry["status"] = "disconnected"
        finally:
            self._record()  # if the answer did not get as far as _send

    def _record(self) -> None:
        if hasattr(self, "entry") and not getattr(self, "recorded", False):
            self.recorded = True
            self.st.record(self.entry)

    def _cacerts(self, ctl):
        p = self.st.pki
        certs = [p.root]
        if ctl["rollover"]:
            certs = [p.root, p.new_root, p.new_with_old, p.old_with_new]
        if ctl["wrong_ca"] == "cacerts":
            certs = [p.wrong]
        if "cacerts" in ctl["malformed"]:
            return self._send(200, _b64(b"\x30\x03\x02\x01\x05", False), "application/pkcs7-mime")
        headers = {"Content-Transfer-Encoding": "base64"} if ctl["whitespace"] else None
        self._send(200, _b64(_certs_only(certs), ctl["whitespace"]), "application/pkcs7-mime; smime-type=certs-only",
                   headers)

    def _csrattrs(self, ctl):
        spec = ctl["csrattrs"]
        if not spec:
            return self._send(204)
        der = base64.b64decode(spec["der_b64"])  # built by the test (it knows the ASN.1 it wants)
        self._send(200, _b64(der, ctl["whitespace"]), "application/csrattrs")

    def _enroll(self, op: str, body: bytes, ctl):
        p = self.st.pki
        client = self._client_cert()
        user = self._basic_user(ctl)
        self.entry["basic_user"] = user
        self.entry["client_cert"] = client.subject.rfc4514_string() if client else None
        if client is not None:
            self.entry["client_cert_serial"] = format(client.serial_number, "x")
            self.entry["client_cert_issuer"] = client.issuer.rfc4514_string()
            self.entry["client_cert_key"] = type(client.public_key()).__name__
        if user == "":
            return self._send(401, b"bad credentials\n", "text/plain", self._challenge(ctl))
        try:
            text = b"".join(body.split())
            csr = x509.load_der_x509_csr(base64.b64decode(text))
        except ValueError:
            return self._send(400, b"not a base64 PKCS#10\n", "text/plain")
        csr_der = csr.public_bytes(serialization.Encoding.DER)
        sha = hashlib.sha256(csr_der).hexdigest()
        self.entry.update({"csr_sha256": sha, "csr_subject": csr.subject.rfc4514_string(),
                           "csr_sig_oid": csr.signature_algorithm_oid.dotted_string,
                           "csr_key": type(csr.public_key()).__name__,
                           "csr_extensions": [e.oid.dotted_string for e in csr.extensions]})
        if ctl["refuse_mldsa"] and "MLDSA" in type(csr.public_key()).__name__:
            return self._send(400, ctl["refuse_mldsa"].encode() + b"\n", "text/plain")
        if not csr.is_signature_valid:
            return self._send(400, b"CSR signature invalid\n", "text/plain")
        authorized = False
        if client is not None:
            if op == "simpleenroll" and client.issuer == p.boot_ca.subject:
                authorized = True
            if op == "simplereenroll" and client.subject == csr.subject and client.issuer in (p.root.subject,):
                authorized = True
        if authorized:
            self.entry["authenticated_by"] = "client_cert"
        if op in ctl["require_client_cert"]:
            if not authorized:
                return self._send(403, b"client certificate required\n", "text/plain")
        elif user and not authorized:
            authorized = True
            self.entry["authenticated_by"] = ctl["http_auth"]
        if authorized and ctl["http_auth_with_cert"] and not user:
            authorized = False  # as some servers do unless configured otherwise: HTTP auth on top of TLS
        if not authorized:
            return self._send(401, b"authentication required\n", "text/plain", self._challenge(ctl))
        with self.st.lock:
            n = self.st.seen.get(sha, 0) + 1
            self.st.seen[sha] = n
        self.entry["attempt_for_csr"] = n
        if n <= int(ctl["pending"]["count"]):
            ra = str(ctl["pending"]["retry_after"])
            if ra.startswith("date:"):
                ra = email.utils.formatdate(time.time() + float(ra[5:]), usegmt=True)
            headers = {} if ctl["no_retry_after"] else {"Retry-After": ra}
            return self._send(202, b"", None, headers)
        if op in ctl["malformed"]:
            # valid base64, valid DER framing, not a ContentInfo
            return self._send(200, base64.b64encode(b"\x30\x10" + b"not a PKCS#7 msg"), "application/pkcs7-mime")
        ca, ca_key = (p.new_root, p.new_root_key) if ctl["rollover"] else (p.root, p.root_key)
        if ctl["wrong_ca"] is True:
            ca, ca_key = p.wrong, p.wrong_key
        pub = csr.public_key()
        if ctl["wrong_key"]:
            pub = _gen_key("EC-P-256").public_key()
        subject = _name("someone-else") if ctl["wrong_subject"] else csr.subject
        if ctl["subject_policy"] == "cn_only":
            subject = x509.Name([a for a in csr.subject if a.oid == NameOID.COMMON_NAME])
        elif ctl["subject_policy"] == "reorder":
            subject = x509.Name(list(reversed(list(csr.subject))))
        elif ctl["subject_policy"] == "add_o":
            subject = x509.Name(list(csr.subject) + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CA Policy Inc")])
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = None
        if ctl["san_policy"] == "drop":
            san = None
        elif ctl["san_policy"] == "add":
            san = x509.SubjectAlternativeName(list(san or []) + [x509.DNSName("added-by-ca.example")])
        eku = [ExtendedKeyUsageOID.SERVER_AUTH] if ctl["eku"] == "server_auth" else [ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = issue(ca, ca_key, subject, pub, float(ctl["lifetime_s"]), san=san, eku=eku,
                     key_usage=ctl["key_usage"])
        self.entry["issued_serial"] = format(cert.serial_number, "x")
        headers = {"Content-Transfer-Encoding": "base64"} if ctl["whitespace"] else None
        certs = [cert] + ([ca, p.wrong] if ctl["extra_certs"] else [])
        der = _certs_only(certs)
        if ctl["ber_lengths"]:  # the outer SEQUENCE's length in a longer form than DER allows
            n = len(der) - 4
            assert der[:2] == b"\x30\x82" and int.from_bytes(der[2:4], "big") == n
            der = b"\x30\x84" + n.to_bytes(4, "big") + der[4:]
        self._send(200, _b64(der, ctl["whitespace"]), "application/pkcs7-mime; smime-type=certs-only", headers)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state: State, ctx: ssl.SSLContext):
        self.state, self.ctx = state, ctx
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.state.record({"ts": time.time(), "generation": self.state.control()["generation"],
                               "tls_error": str(e)})
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    @staticmethod
    def group_of(sock) -> str:
        try:
            from wvds.ossl import tls as ossl_tls
            return ossl_tls.negotiated_group(sock)
        except Exception:
            return ""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ca-alg", default="ML-DSA-65")
    ap.add_argument("--tls-key-alg", default="ML-DSA-65")
    ap.add_argument("--tls-max", default="1.3", choices=("1.2", "1.3"))
    ap.add_argument("--groups", default="")
    args = ap.parse_args()
    pki = Pki(args.dir / "pki", args.ca_alg, args.tls_key_alg)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3 if args.tls_max == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.dir / "pki" / "tls_chain.pem", args.dir / "pki" / "tls.key")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cadata=(_pem(pki.root) + _pem(pki.boot_ca) + _pem(pki.new_root)).decode())
    if args.groups:
        from wvds.ossl import tls as ossl_tls
        ossl_tls.set_groups(ctx, args.groups.split(":"))
    state = State(args.dir, pki)
    srv = Server(("127.0.0.1", args.port), state, ctx)
    port = srv.server_address[1]
    ready = {"port": port, "pid": os.getpid(), "openssl": ssl.OPENSSL_VERSION,
             "root_sha256": pki.fingerprint(pki.root), "new_root_sha256": pki.fingerprint(pki.new_root),
             "root": str(args.dir / "pki" / "root.pem"), "wrong_root": str(args.dir / "pki" / "wrong_root.pem"),
             "bootstrap_client_cert": str(args.dir / "pki" / "bootstrap_client.pem"),
             "bootstrap_client_key": str(args.dir / "pki" / "bootstrap_client.key")}
    tmp = args.dir / "ready.json.tmp"
    tmp.write_text(json.dumps(ready))
    os.replace(tmp, args.dir / "ready.json")
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
