"""Fuzz target: everything est_service parses from an EST server's answer.

Byte 0 picks the parser, the rest is the server's bytes:
  0  HTTP framing: the raw HTTP/1.1 response read by EstHttp.request (the real method, over a fake
     socket instead of TLS), then raise_for_status() and Retry-After as enroll.py uses them
  1  a /simpleenroll or /cacerts body: base64 (RFC 8951 leniency) -> certs-only PKCS#7 -> certificates,
     and every certificate property chain.py and the store read
  2  a /csrattrs body: base64 -> CsrAttrs (RFC 7030 / RFC 9908 template)
  3  one DER certificate and its properties
The only acceptable failures are est_service's own EstError subclasses (ProtocolError,
TransportError, HttpStatusError, ...), which the renewal loop reports and retries; anything else
is a crash (the daemon would log "unexpected error" and give up on the enrollment attempt).

    python tests/fuzz/fuzz_est_responses.py tests/fuzz/corpus/est
"""
from __future__ import annotations

import datetime as dt
import io
import socket

import fuzzlib

import atheris

with atheris.instrument_imports(include=["wvds.est_service", "asn1crypto", "http.client", "email"]):
    from wvds.est_service import csrattrs, http as est_http, pkcs7
    from wvds.est_service.config import Server
    from wvds.est_service.errors import EstError
    from wvds.est_service.x509 import Cert

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
SERVER = Server("fuzz", "est.invalid", 8443, max_response_bytes=64 * 1024)


class FakeSocket:
    """Stands in for the TLS socket: what the client sends is dropped, the answer is the fuzz input."""

    def __init__(self, answer: bytes):
        self.answer = answer

    def makefile(self, mode, *args, **kw):
        return io.BufferedReader(io.BytesIO(self.answer))

    def sendall(self, data):
        pass

    def version(self):
        return "TLSv1.3"

    def close(self):
        pass

    def shutdown(self, how):
        pass

    def settimeout(self, t):
        pass


class FakeContext:
    def wrap_socket(self, raw, server_hostname=None):
        return raw


class FuzzHttp(est_http.EstHttp):
    def __init__(self):
        self.server, self.cancel = SERVER, est_http.Cancel()
        self.authenticated, self.credentials, self.identity, self.ctx = True, None, None, FakeContext()


ANSWER = {"bytes": b""}
# negotiated_group() reads OpenSSL's SSL* out of a real ssl.SSLSocket; a FakeSocket has none (with our
# libssl loadable it would dereference garbage). The group is diagnostics only: not under test here.
est_http._group = lambda sock: ""
socket.create_connection = lambda addr, timeout=None: FakeSocket(ANSWER["bytes"])  # harness only: no network
HTTP = FuzzHttp()


def touch(cert: Cert) -> None:
    """Every property of a parsed certificate that path validation, the store or the status output reads."""
    (cert.subject, cert.issuer, cert.subject_text, cert.serial_hex, cert.not_before, cert.not_after, cert.public_key,
     cert.is_ca, cert.path_len, cert.key_usage, cert.self_issued, cert.critical_extensions, cert.san_der,
     cert.san_text, cert.subject_key_id, cert.authority_key_id, cert.fingerprint, cert.pem, repr(cert))
    cert.valid_at(NOW, 300)


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    kind, body = data[0] % 4, data[1:]
    try:
        if kind == 0:
            ANSWER["bytes"] = body
            resp = HTTP.request("POST", "simpleenroll", b"MIIB", "application/pkcs10")
            resp.content_type
            est_http.retry_after(resp.header("Retry-After"), NOW)
            est_http.raise_for_status(resp, "simpleenroll", (200, 202))
        elif kind == 1:
            for cert in pkcs7.certs_only(pkcs7.decode_body(body, "fuzz"), "fuzz"):
                touch(cert)
        elif kind == 2:
            csrattrs.parse(pkcs7.decode_body(body, "fuzz"))
        else:
            touch(Cert(body))
    except EstError:
        pass


if __name__ == "__main__":
    fuzzlib.run(TestOneInput)
