"""EST bodies: the base64 transfer encoding (RFC 8951) and certs-only PKCS#7 (RFC 7030 4.1.3, 4.2.3).

Lenient where RFC 8951 says so: the base64 body may contain whitespace and line
breaks anywhere, may lack padding, and the Content-Transfer-Encoding header is
ignored, absent or in any case (base64 is always assumed). Also tolerated, because
deployed servers do it: NUL bytes after the body (a C server that counts the
string's terminator in Content-Length), a PEM-armored body, and a raw DER body. Strict about the structure: the
content must be a CMS ContentInfo of type signedData whose certificates are
well-formed X.509 certificates; anything else is a ProtocolError.
"""
from __future__ import annotations

import base64
import binascii
import re

from asn1crypto import cms, pem

from wvds.est_service import asn1  # (also: ML-DSA registration before parsing)
from wvds.est_service.errors import ProtocolError
from wvds.est_service.x509 import Cert

_WS = re.compile(rb"[\s]+")
_B64 = re.compile(rb"^[A-Za-z0-9+/]*={0,2}$")


def decode_body(body: bytes, what: str) -> bytes:
    """DER from an EST response body (base64 with any whitespace; PEM or raw DER tolerated)."""
    if body[:1] != b"\x30":  # not DER: text, whose trailing NULs are a C string's terminator
        body = body.rstrip(b"\x00 \t\r\n")
    if not body or not body.strip():
        raise ProtocolError(f"{what}: empty body")
    if body[:1] == b"\x30":  # DER already (base64 text never starts with "0" = 0x30 for a SEQUENCE: "MI...")
        return bytes(body)
    stripped = body.strip()
    if pem.detect(stripped):
        try:
            return pem.unarmor(stripped)[2]
        except ValueError as e:
            raise ProtocolError(f"{what}: malformed PEM: {e}") from None
    text = _WS.sub(b"", body)
    if not _B64.match(text):
        raise ProtocolError(f"{what}: body is not base64 (RFC 8951)")
    text += b"=" * (-len(text) % 4)
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ProtocolError(f"{what}: bad base64: {e}") from None
    if not der:
        raise ProtocolError(f"{what}: empty body")
    return der


def encode_body(der: bytes) -> bytes:
    """Base64 for a request body: 64-character lines, as most EST servers expect."""
    text = base64.b64encode(der)
    return b"\r\n".join(text[i:i + 64] for i in range(0, len(text), 64)) + b"\r\n"


def certs_only(der: bytes, what: str) -> list[Cert]:
    """The certificates of a certs-only (degenerate) SignedData; ProtocolError if it is anything else."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise ProtocolError(f"{what}: PKCS#7 content is {info['content_type'].native}, not signedData")
        signed = info["content"]
        choices = signed["certificates"]
        # asn1crypto parses children lazily: iterating is parsing, so it stays inside the try
        ders = [choice.chosen.dump() for choice in choices or []
                if choice.name == "certificate"]  # attribute/other certificate formats: not X.509, not ours
    except ProtocolError:
        raise
    except asn1.MALFORMED as e:
        raise ProtocolError(f"{what}: malformed PKCS#7: {e}") from None
    out = [Cert(der) for der in ders]
    if not out:
        raise ProtocolError(f"{what}: PKCS#7 holds no certificate")
    return out


def build_certs_only(certs: list[bytes]) -> bytes:
    """A certs-only SignedData (used by tests and for storing CA bundles in EST form)."""
    from asn1crypto import x509
    signed = cms.SignedData({
        "version": "v1", "digest_algorithms": [], "encap_content_info": {"content_type": "data"},
        "certificates": [cms.CertificateChoices(name="certificate", value=x509.Certificate.load(c)) for c in certs],
        "signer_infos": [],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
