#!/usr/bin/env python3
"""extract_certs.py - the WvdS OEM certificate tool (Python 3.9+).

  extract_certs.py show FILE...                 subject, issuer, serial, validity, key type, fingerprints
  extract_certs.py split FILE -o DIR [--der]    one file per certificate
  extract_certs.py convert IN OUT [--to pem|der] [--index N]
  extract_certs.py verify --ca ROOTS [--untrusted CHAIN] CERT [--openssl PATH]

Inputs are recognised by content: PEM (any number of CERTIFICATE / PKCS7 / CMS
blocks), DER (a certificate, a PKCS#7/CMS SignedData such as an EST response, or a
PKCS#12 file), or base64 without PEM armour (an EST response body). Key types
shown include ML-DSA-44/65/87, ML-KEM, SLH-DSA, ECDSA (named curves), Ed25519/448
and RSA.

This tool parses and presents; it does no cryptography of its own. Chain verification
checks names, validity, CA flags and key usage here, and the signatures with OpenSSL
3.5 or later (ML-DSA). A PKCS#12 file's MAC and encryption are handled by `openssl
pkcs12` (OpenSSL 3.0 or later), else by pyca/cryptography if this Python has it; with
neither, such a file is refused with a message naming both. The OpenSSL is the
delivery's own bin/<arch>/openssl found next to this script, /opt/wvds/bin/openssl,
or openssl on PATH (or give --openssl / $WVDS_OPENSSL; "none" for no OpenSSL).
SHA-256/SHA-1 fingerprints are names for display, from the standard library's
hashlib; no check here depends on them.

PKCS#12: certificates in plain bags are read here; the MAC (PKCS#12 KDF or PBMAC1)
is checked and encrypted bags (PBES2/AES, 3DES) are decrypted by OpenSSL or pyca.
Password: --password-file FILE, $WVDS_P12_PASSWORD, or asked on the terminal; it
reaches openssl through its environment, never its command line. RC2/RC4 bags need
OpenSSL's legacy provider or pyca/cryptography (else the message says how to
re-export them). Private keys in a PKCS#12 are never extracted (openssl is run
with -nokeys).

Without an OpenSSL 3.5 the signatures are not checked and `verify` exits with 3.

Exit status: 0 success; 1 bad input or verification failed; 2 usage error;
3 signatures could not be checked.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import getpass
import hashlib
import ipaddress
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

PROG = "extract_certs.py"


class InputError(Exception):
    """Bad input: reported as one line, exit status 1, never a traceback."""


# --- DER / BER ------------------------------------------------------------------------------------------

class Node:
    """One ASN.1 element: tag class/number, constructed flag, content bytes, and its encoding."""
    __slots__ = ("cls", "constructed", "tag", "content", "raw", "_children")

    def __init__(self, cls: int, constructed: bool, tag: int, content: bytes, raw: bytes):
        self.cls, self.constructed, self.tag, self.content, self.raw = cls, constructed, tag, content, raw
        self._children = None

    @property
    def children(self) -> list:
        if not self.constructed:
            raise InputError("malformed ASN.1: expected a constructed element")
        if self._children is None:
            self._children = parse_all(self.content)
        return self._children

    def is_universal(self, tag: int) -> bool:
        return self.cls == 0 and self.tag == tag

    def is_context(self, tag: int) -> bool:
        return self.cls == 2 and self.tag == tag

    def octets(self) -> bytes:
        """An OCTET STRING's value, also in the BER constructed form (segments concatenated)."""
        if not self.constructed:
            return self.content
        return b"".join(c.octets() for c in self.children)


def parse_one(data: bytes, pos: int = 0) -> tuple:
    """(Node, end position). Definite lengths, and BER indefinite lengths (some PKCS#7/PKCS#12 writers)."""
    start = pos
    try:
        first = data[pos]
        pos += 1
        cls, constructed, tag = first >> 6, bool(first & 0x20), first & 0x1F
        if tag == 0x1F:
            tag = 0
            while True:
                b = data[pos]
                pos += 1
                tag = (tag << 7) | (b & 0x7F)
                if not b & 0x80:
                    break
        length = data[pos]
        pos += 1
        if length == 0x80:
            if not constructed:
                raise InputError("malformed ASN.1: indefinite length on a primitive element")
            inner = pos
            while data[pos:pos + 2] != b"\x00\x00":
                _, pos = parse_one(data, pos)
            content, end = data[inner:pos], pos + 2
        else:
            if length & 0x80:
                n = length & 0x7F
                if n == 0 or n > 4 or pos + n > len(data):
                    raise InputError("malformed ASN.1: bad length")
                length = int.from_bytes(data[pos:pos + n], "big")
                pos += n
            end = pos + length
            if end > len(data):
                raise InputError("truncated ASN.1 data")
            content = data[pos:end]
    except IndexError:
        raise InputError("truncated ASN.1 data") from None
    return Node(cls, constructed, tag, content, data[start:end]), end


def parse_all(data: bytes) -> list:
    out, pos = [], 0
    while pos < len(data):
        node, pos = parse_one(data, pos)
        out.append(node)
    return out


def parse_der(data: bytes) -> Node:
    node, end = parse_one(data)
    if data[end:].strip(b"\x00\r\n \t"):
        raise InputError("trailing bytes after the ASN.1 data")
    return node


def oid_text(node: Node) -> str:
    if not node.is_universal(6) or not node.content:
        raise InputError("malformed ASN.1: expected an OBJECT IDENTIFIER")
    parts, value = [], 0
    for b in node.content:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    if not parts or node.content[-1] & 0x80:  # only continuation bytes, or a last arc cut short
        raise InputError("malformed ASN.1: truncated OBJECT IDENTIFIER")
    first = min(parts[0] // 40, 2)
    return ".".join(map(str, [first, parts[0] - 40 * first] + parts[1:]))


def integer(node: Node) -> int:
    if not node.is_universal(2):
        raise InputError("malformed ASN.1: expected an INTEGER")
    return int.from_bytes(node.content, "big", signed=True)


def seq(node: Node, what: str, min_len: int = 0) -> list:
    if not (node.is_universal(16) and node.constructed):
        raise InputError(f"malformed {what}: expected a SEQUENCE")
    if len(node.children) < min_len:
        raise InputError(f"malformed {what}: too few elements")
    return node.children


# --- names, times, algorithms ---------------------------------------------------------------------------

NAME_ATTRS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.5": "serialNumber", "2.5.4.4": "SN", "2.5.4.42": "GN", "2.5.4.12": "title",
    "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym", "2.5.4.97": "organizationIdentifier",
    "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
KEY_ALGS = {
    "1.2.840.113549.1.1.1": "RSA", "1.2.840.113549.1.1.10": "RSA-PSS", "1.2.840.10045.2.1": "EC",
    "1.3.101.110": "X25519", "1.3.101.111": "X448", "1.3.101.112": "Ed25519", "1.3.101.113": "Ed448",
    "2.16.840.1.101.3.4.3.17": "ML-DSA-44", "2.16.840.1.101.3.4.3.18": "ML-DSA-65",
    "2.16.840.1.101.3.4.3.19": "ML-DSA-87",
    "2.16.840.1.101.3.4.3.32": "HashML-DSA-44-SHA512", "2.16.840.1.101.3.4.3.33": "HashML-DSA-65-SHA512",
    "2.16.840.1.101.3.4.3.34": "HashML-DSA-87-SHA512",
    "2.16.840.1.101.3.4.4.1": "ML-KEM-512", "2.16.840.1.101.3.4.4.2": "ML-KEM-768",
    "2.16.840.1.101.3.4.4.3": "ML-KEM-1024",
}
for _i, _n in enumerate(("SHA2-128s", "SHA2-128f", "SHA2-192s", "SHA2-192f", "SHA2-256s", "SHA2-256f",
                         "SHAKE-128s", "SHAKE-128f", "SHAKE-192s", "SHAKE-192f", "SHAKE-256s", "SHAKE-256f")):
    KEY_ALGS[f"2.16.840.1.101.3.4.3.{20 + _i}"] = f"SLH-DSA-{_n}"
CURVES = {"1.2.840.10045.3.1.7": "P-256", "1.3.132.0.34": "P-384", "1.3.132.0.35": "P-521",
          "1.3.132.0.10": "secp256k1", "1.3.36.3.3.2.8.1.1.7": "brainpoolP256r1",
          "1.3.36.3.3.2.8.1.1.11": "brainpoolP384r1", "1.3.36.3.3.2.8.1.1.13": "brainpoolP512r1"}
SIG_ALGS = {
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption", "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption", "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS", "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384", "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1", "1.3.101.112": "Ed25519", "1.3.101.113": "Ed448",
}
SIG_ALGS.update({k: v for k, v in KEY_ALGS.items() if "DSA" in v})
EKU = {"1.3.6.1.5.5.7.3.1": "serverAuth", "1.3.6.1.5.5.7.3.2": "clientAuth", "1.3.6.1.5.5.7.3.3": "codeSigning",
       "1.3.6.1.5.5.7.3.4": "emailProtection", "1.3.6.1.5.5.7.3.8": "timeStamping",
       "1.3.6.1.5.5.7.3.9": "OCSPSigning", "1.3.6.1.5.5.7.3.28": "cmcRA", "1.3.6.1.5.5.7.3.27": "cmcCA",
       "2.5.29.37.0": "anyExtendedKeyUsage"}
KEY_USAGE = ("digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
             "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly")


def string_value(node: Node) -> str:
    codecs = {12: "utf-8", 19: "ascii", 22: "ascii", 20: "latin-1", 26: "ascii", 30: "utf-16-be",
              28: "utf-32-be", 18: "ascii"}
    if node.cls == 0 and node.tag in codecs:
        return node.content.decode(codecs[node.tag], errors="replace")
    return "#" + node.raw.hex()


def name_text(node: Node) -> str:
    parts = []
    for rdn in seq(node, "name"):
        for atv in rdn.children:
            oid_node, value = seq(atv, "name attribute", 2)[:2]
            oid = oid_text(oid_node)
            text = string_value(value)
            parts.append(f"{NAME_ATTRS.get(oid, oid)}={text.replace(',', chr(92) + ',')}")
    return ", ".join(parts)


def name_attr(node: Node, attr: str) -> str | None:
    for part in name_text(node).split(", "):
        if part.startswith(attr + "="):
            return part[len(attr) + 1:]
    return None


def time_value(node: Node) -> dt.datetime:
    text = node.content.decode("ascii", errors="replace")
    try:
        if node.is_universal(23):  # UTCTime YYMMDDHHMMSSZ
            year = int(text[:2])
            return dt.datetime.strptime(("19" if year >= 50 else "20") + text, "%Y%m%d%H%M%SZ").replace(
                tzinfo=dt.timezone.utc)
        if node.is_universal(24):  # GeneralizedTime YYYYMMDDHHMMSSZ
            return dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        pass
    raise InputError(f"malformed certificate time {text!r}")


def colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


# --- certificates ---------------------------------------------------------------------------------------

class Certificate:
    """The fields of an X.509 certificate this tool shows and checks (no signature check)."""

    def __init__(self, der: bytes):
        self.der = der
        top = parse_der(der)
        tbs_node, sig_alg, sig = seq(top, "certificate", 3)[:3]
        self.tbs_der = tbs_node.raw
        tbs = seq(tbs_node, "certificate", 6)
        i = 0
        self.version = 1
        if tbs[0].is_context(0):
            self.version = integer(tbs[0].children[0]) + 1
            i = 1
        self.serial = tbs[i].content
        self.signature_algorithm = self._alg_name(seq(sig_alg, "signature algorithm", 1)[0], SIG_ALGS)
        self.issuer_node, validity, self.subject_node, spki = tbs[i + 2], tbs[i + 3], tbs[i + 4], tbs[i + 5]
        self.issuer, self.subject = name_text(self.issuer_node), name_text(self.subject_node)
        nb, na = seq(validity, "validity", 2)[:2]
        self.not_before, self.not_after = time_value(nb), time_value(na)
        self.key_type, self.key_bits = self._key(spki)
        self.extensions: dict[str, tuple[bool, Node]] = {}
        for node in tbs[i + 6:]:
            if node.is_context(3):
                for ext in seq(node.children[0], "extensions"):
                    parts = seq(ext, "extension", 2)
                    critical = len(parts) == 3 and parts[1].is_universal(1) and parts[1].content != b"\x00"
                    self.extensions[oid_text(parts[0])] = (critical, parse_der(parts[-1].content))
        self.signature = sig.content[1:] if sig.is_universal(3) else b""

    @staticmethod
    def _alg_name(oid_node: Node, table: dict) -> str:
        oid = oid_text(oid_node)
        return table.get(oid, oid)

    @staticmethod
    def _key(spki: Node) -> tuple:
        alg, bits = seq(spki, "public key", 2)[:2]
        parts = seq(alg, "public key algorithm", 1)
        oid = oid_text(parts[0])
        name = KEY_ALGS.get(oid, oid)
        key = bits.content[1:]
        if name == "EC" and len(parts) > 1 and parts[1].is_universal(6):
            curve = oid_text(parts[1])
            return f"EC {CURVES.get(curve, curve)}", len(key)
        if name in ("RSA", "RSA-PSS"):
            try:
                n = integer(seq(parse_der(key), "RSA key", 2)[0])
                return f"{name} {n.bit_length()} bits", len(key)
            except InputError:
                return name, len(key)
        return name, len(key)

    @property
    def sha256(self) -> str:
        return colon_hex(hashlib.sha256(self.der).digest())

    @property
    def sha1(self) -> str:
        return colon_hex(hashlib.sha1(self.der).digest())

    def ext(self, oid: str):
        return self.extensions.get(oid)

    @property
    def basic_constraints(self) -> tuple:
        """(is CA, path length or None, present)."""
        e = self.ext("2.5.29.19")
        if not e:
            return False, None, False
        ca, pathlen = False, None
        for c in e[1].children:
            if c.is_universal(1):
                ca = c.content != b"\x00"
            elif c.is_universal(2):
                pathlen = integer(c)
        return ca, pathlen, True

    @property
    def key_usage(self) -> list:
        e = self.ext("2.5.29.15")
        if not e or not e[1].is_universal(3):
            return []
        unused, bits = e[1].content[0], e[1].content[1:]
        value = int.from_bytes(bits, "big") >> unused if bits else 0
        width = len(bits) * 8 - unused
        return [KEY_USAGE[i] for i in range(min(width, len(KEY_USAGE))) if value >> (width - 1 - i) & 1]

    @property
    def ext_key_usage(self) -> list:
        e = self.ext("2.5.29.37")
        return [EKU.get(oid_text(c), oid_text(c)) for c in e[1].children] if e else []

    @property
    def subject_alt_names(self) -> list:
        e = self.ext("2.5.29.17")
        out = []
        for c in (e[1].children if e else []):
            if c.cls != 2:
                continue
            if c.tag == 2:
                out.append("DNS:" + c.content.decode("ascii", "replace"))
            elif c.tag == 1:
                out.append("email:" + c.content.decode("ascii", "replace"))
            elif c.tag == 6:
                out.append("URI:" + c.content.decode("ascii", "replace"))
            elif c.tag == 7 and len(c.content) in (4, 16):
                out.append("IP:" + str(ipaddress.ip_address(c.content)))
            elif c.tag == 4:
                out.append("DirName:" + name_text(c.children[0]))
            else:
                out.append(f"other[{c.tag}]")
        return out

    @property
    def ski(self) -> bytes | None:
        e = self.ext("2.5.29.14")
        return e[1].content if e else None

    @property
    def aki(self) -> bytes | None:
        e = self.ext("2.5.29.35")
        if not e:
            return None
        for c in e[1].children:
            if c.is_context(0):
                return c.content
        return None

    @property
    def self_issued(self) -> bool:
        return self.issuer_node.raw == self.subject_node.raw

    def validity_state(self, now: dt.datetime) -> str:
        if now < self.not_before:
            return "NOT YET VALID"
        if now > self.not_after:
            return "EXPIRED"
        return "valid now"

    def label(self) -> str:
        cn = name_attr(self.subject_node, "CN") or name_attr(self.subject_node, "O") or "certificate"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", cn).strip("_")[:60] or "certificate"

    def to_pem(self) -> str:
        b64 = base64.b64encode(self.der).decode()
        return "-----BEGIN CERTIFICATE-----\n" + "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) \
            + "\n-----END CERTIFICATE-----\n"

    def describe(self, now: dt.datetime) -> dict:
        ca, pathlen, present = self.basic_constraints
        d = {"subject": self.subject, "issuer": self.issuer, "serial": self.serial.hex(":"),
             "not_before": self.not_before.strftime("%Y-%m-%d %H:%M:%S UTC"),
             "not_after": self.not_after.strftime("%Y-%m-%d %H:%M:%S UTC"), "state": self.validity_state(now),
             "key": self.key_type, "public_key_bytes": self.key_bits, "signature": self.signature_algorithm,
             "sha256": self.sha256, "sha1": self.sha1, "ca": ca, "self_issued": self.self_issued}
        if pathlen is not None:
            d["path_length"] = pathlen
        if not present:
            d["ca"] = None
        for key, value in (("key_usage", self.key_usage), ("extended_key_usage", self.ext_key_usage),
                           ("subject_alt_names", self.subject_alt_names)):
            if value:
                d[key] = value
        if self.ski:
            d["subject_key_id"] = self.ski.hex(":")
        if self.aki:
            d["authority_key_id"] = self.aki.hex(":")
        return d


# --- containers: PEM, PKCS#7, PKCS#12 --------------------------------------------------------------------

OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----\s*(.*?)\s*-----END \1-----", re.S)


class Loaded:
    """Certificates found in one input, and notes about what else was there."""

    def __init__(self, kind: str):
        self.kind = kind
        self.certs: list = []
        self.notes: list = []


def read_input(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError("file not found") from None
    except IsADirectoryError:
        raise InputError("is a directory") from None
    except PermissionError:
        raise InputError("permission denied") from None


def load(data: bytes, password_source=None, openssl: str | None = None) -> Loaded:
    """Every certificate in data, whatever the container (openssl: as find_openssl's `explicit`)."""
    try:
        return _load(data, password_source, openssl)
    except RecursionError:  # BER indefinite lengths (or constructed strings) nested thousands deep
        raise InputError("malformed ASN.1: nested too deeply") from None
    except IndexError:  # a structure with fewer elements than its type has (the parsers index into it)
        raise InputError("malformed ASN.1: an element is missing") from None


def _load(data: bytes, password_source, openssl: str | None) -> Loaded:
    if not data.strip():
        raise InputError("empty input")
    if b"-----BEGIN " in data:
        return _load_pem(data)
    if data[:1] == b"\x30":
        return _load_der(data, password_source, "DER", openssl)
    text = re.sub(rb"\s+", b"", data)
    if re.fullmatch(rb"[A-Za-z0-9+/]+=*", text or b"!"):
        try:
            der = base64.b64decode(text + b"=" * (-len(text) % 4))
        except binascii.Error:
            der = b""
        if der[:1] == b"\x30":
            return _load_der(der, password_source, "base64", openssl)
    raise InputError("not a certificate, PKCS#7 or PKCS#12 file (neither PEM, DER nor base64 DER)")


def _load_pem(data: bytes) -> Loaded:
    out = Loaded("PEM")
    blocks = PEM_BLOCK.findall(data)
    if not blocks:
        raise InputError("PEM armour without a complete block (a '-----END' line missing?)")
    for label, body in blocks:
        label = label.decode()
        body = re.sub(rb"^[A-Za-z-]+:.*$", b"", body, flags=re.M)  # RFC 1421 headers (Proc-Type...)
        try:
            der = base64.b64decode(re.sub(rb"\s+", b"", body), validate=True)
        except binascii.Error:
            raise InputError(f"PEM block {label}: invalid base64") from None
        if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
            if label == "TRUSTED CERTIFICATE":  # OpenSSL's form: certificate followed by trust settings
                der = parse_one(der)[0].raw
            out.certs.append(_cert(der, f"PEM block {len(out.certs) + 1}"))
        elif label in ("PKCS7", "CMS"):
            out.certs += _signed_data_certs(parse_der(der))
            out.kind = "PEM PKCS#7"
        elif "PRIVATE KEY" in label:
            out.notes.append(f"contains a {label} block (not shown, not copied)")
        else:
            out.notes.append(f"contains a {label} block (ignored)")
    return out


def _cert(der: bytes, where: str) -> Certificate:
    try:
        return Certificate(der)
    except (InputError, IndexError, ValueError) as e:  # fields missing or out of range: still bad input
        raise InputError(f"{where}: not a valid certificate: {e or type(e).__name__}") from None


def _load_der(der: bytes, password_source, kind: str, openssl: str | None) -> Loaded:
    top = parse_der(der)
    parts = seq(top, "input", 1)
    if parts[0].is_universal(6):  # ContentInfo
        oid = oid_text(parts[0])
        if oid != OID_SIGNED_DATA:
            raise InputError(f"a CMS/PKCS#7 ContentInfo of type {oid}, not SignedData: no certificates to read")
        out = Loaded(f"{kind} PKCS#7")
        out.certs = _signed_data_certs(top)
        return out
    if len(parts) >= 2 and parts[0].is_universal(2) and parts[1].is_universal(16):  # PFX
        return _load_pkcs12(top, password_source, kind, openssl)
    if len(parts) == 3 and parts[0].is_universal(16):
        out = Loaded(f"{kind} certificate")
        out.certs.append(_cert(top.raw, "input"))
        return out
    raise InputError("DER data that is neither a certificate, a PKCS#7 SignedData nor a PKCS#12 file")


def _signed_data_certs(content_info: Node) -> list:
    parts = seq(content_info, "PKCS#7", 2)
    if oid_text(parts[0]) != OID_SIGNED_DATA or not parts[1].is_context(0):
        raise InputError("PKCS#7 is not SignedData")
    signed = seq(parts[1].children[0], "PKCS#7 SignedData", 3)
    certs = []
    for node in signed[3:]:
        if node.is_context(0) and node.constructed:  # [0] IMPLICIT SET OF CertificateChoices
            for i, c in enumerate(node.children, 1):
                if c.is_universal(16):
                    certs.append(_cert(c.raw, f"PKCS#7 certificate {i}"))
    return certs


# --- cryptography: the delivered openssl command, else pyca/cryptography; none is written here ------------

VERIFY_OPENSSL = (3, 5)  # ML-DSA signatures
PKCS12_OPENSSL = (3, 0)  # PBES2/AES PKCS#12 and the -provider/-propquery options
NO_CRYPTO = ("needs OpenSSL 3.0 or later (the delivery's bin/<arch>/openssl, /opt/wvds/bin/openssl, openssl on PATH, "
             "or one named by $WVDS_OPENSSL) or pyca/cryptography (python3-cryptography), and neither was found")
_found: dict = {}


def find_openssl(explicit: str | None, minimum: tuple = VERIFY_OPENSSL) -> str | None:
    """An OpenSSL command of at least `minimum`: --openssl, $WVDS_OPENSSL, the delivery's, /opt/wvds/bin, then PATH.
    "none" (as --openssl, or as $WVDS_OPENSSL without --openssl) uses no OpenSSL: no signature check, and
    PKCS#12 files are read with pyca/cryptography if this Python has it."""
    if (explicit or os.environ.get("WVDS_OPENSSL")) == "none":
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine(), platform.machine())
    candidates = [explicit, os.environ.get("WVDS_OPENSSL"),
                  os.path.join(here, os.pardir, "bin", arch, "openssl"), "/opt/wvds/bin/openssl",
                  shutil.which("openssl")]
    for c in candidates:
        if not c or not os.access(c, os.X_OK):
            if c == explicit and explicit:
                raise InputError(f"--openssl {explicit}: not an executable")
            continue
        if c not in _found:  # its version, asked once per run
            try:
                out = subprocess.run([c, "version"], capture_output=True, text=True, timeout=60).stdout
            except (OSError, subprocess.SubprocessError):
                out = ""
            m = re.search(r"OpenSSL (\d+)\.(\d+)", out)
            _found[c] = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if _found[c] >= minimum:
            return c
    return None


def _pyca_pkcs12():
    try:
        from cryptography.hazmat.primitives.serialization import pkcs12
        return pkcs12
    except ImportError:
        return None


class Opened:
    """A PKCS#12 file whose MAC was checked and whose encrypted parts were decrypted, by `by`."""

    def __init__(self, by: str, certs: list, keys: int):
        self.by, self.certs, self.keys = by, certs, keys  # certs: (DER, friendly name or None), in file order


class Unsupported(InputError):
    """The OpenSSL found lacks an algorithm of the file (RC2, RC4: only in OpenSSL's legacy provider)."""

    def __init__(self, openssl: str, detail: str):
        super().__init__(f"{openssl} lacks an algorithm this file uses ({detail})")
        self.openssl, self.detail = openssl, detail


def open_pkcs12(der: bytes, password: str, openssl: str | None) -> Opened:
    """Check the MAC of a whole PKCS#12 file and decrypt it: with `openssl pkcs12`, else pyca/cryptography."""
    path = find_openssl(openssl, PKCS12_OPENSSL)
    pyca = _pyca_pkcs12()
    if path:
        try:
            return _open_with_openssl(path, der, password)
        except Unsupported:
            if pyca is None:
                raise
    if pyca is not None:
        return _open_with_pyca(pyca, der, password)
    raise InputError("PKCS#12: checking its integrity and decrypting it " + NO_CRYPTO)


PASSIN = "WVDS_P12_PASSIN"  # the password reaches openssl in its environment, never on its command line
# FIPS implementations where the configuration provides them (a device's openssl.cnf: fips=yes), the default
# provider for what PKCS#12 needs beyond FIPS (its own MAC key derivation, 3DES).
OPENSSL_PKCS12 = ("pkcs12", "-nokeys", "-info", "-passin", "env:" + PASSIN, "-provider", "default",
                  "-propquery", "?fips=yes")
OPENSSL_CERT = re.compile(r"^Bag Attributes(.*?)^-----BEGIN CERTIFICATE-----\n(.*?)^-----END CERTIFICATE-----",
                          re.M | re.S)


def _open_with_openssl(openssl: str, der: bytes, password: str) -> Opened:
    """`openssl pkcs12 -nokeys -info`: checks the MAC, decrypts the certificates (never a private key) and
    prints them as PEM with their bag attributes; -info lists every bag on stderr."""
    try:
        r = subprocess.run([openssl, *OPENSSL_PKCS12], input=der, capture_output=True, timeout=120,
                           env=dict(os.environ, **{PASSIN: password}))
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        raise InputError(f"PKCS#12: cannot run {openssl}: {e}") from None
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode != 0:
        if "Mac verify error" in err:
            raise InputError("PKCS#12: wrong password (the integrity check failed)")
        if re.search(r"unsupported|fetch failed", err, re.I):
            raise Unsupported(openssl, _first_error(err))
        if re.search(r"decrypt", err, re.I):
            raise InputError("PKCS#12: wrong password (decryption failed)")
        raise InputError(f"PKCS#12: {openssl} cannot read it: {_first_error(err)}")
    certs = []
    for attrs, pem in OPENSSL_CERT.findall(r.stdout.decode("utf-8", "replace")):
        try:
            cert = base64.b64decode(re.sub(r"\s+", "", pem), validate=True)
        except binascii.Error:
            raise InputError(f"PKCS#12: unexpected output of {openssl}") from None
        name = re.search(r"^\s+friendlyName: (.*)$", attrs, re.M)
        certs.append((cert, name.group(1) if name else None))
    return Opened(openssl, certs, len(re.findall(r"^(?:Key bag|Shrouded Keybag)", err, re.M)))


def _first_error(stderr: str) -> str:
    """The line of openssl's stderr that says what went wrong (not its -info listing)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.search(r"error|unsupported|invalid", ln, re.I)]
    return (errors or lines or ["no message"])[-1][:300]


def _open_with_pyca(pkcs12, der: bytes, password: str) -> Opened:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import Encoding
    try:
        p12 = pkcs12.load_pkcs12(der, password.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise InputError(f"PKCS#12: wrong password, or data pyca/cryptography cannot read ({e})") from None
    certs = []
    for c in ([p12.cert] if p12.cert else []) + list(p12.additional_certs):  # the key's certificate first
        name = c.friendly_name.decode("utf-8", "replace") if c.friendly_name is not None else None
        certs.append((c.certificate.public_bytes(Encoding.DER), name))
    return Opened("pyca/cryptography", certs, int(p12.key is not None))


# --- PKCS#12: its structure is read here, its MAC and encryption by open_pkcs12() --------------------------

BAG_KEY, BAG_SHROUDED, BAG_CERT, BAG_CRL, BAG_SECRET, BAG_SAFE = (f"1.2.840.113549.1.12.10.1.{i}" for i in range(1, 7))
OID_X509_CERT = "1.2.840.113549.1.9.22.1"
OID_FRIENDLY_NAME = "1.2.840.113549.1.9.20"
OID_PBES2 = "1.2.840.113549.1.5.13"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_PBMAC1 = "1.2.840.113549.1.5.14"
LEGACY_PBE = {"1.2.840.113549.1.12.1.1": "pbeWithSHAAnd128BitRC4", "1.2.840.113549.1.12.1.2": "pbeWithSHAAnd40BitRC4",
              "1.2.840.113549.1.12.1.3": "pbeWithSHAAnd3-KeyTripleDES-CBC",
              "1.2.840.113549.1.12.1.4": "pbeWithSHAAnd2-KeyTripleDES-CBC",
              "1.2.840.113549.1.12.1.5": "pbeWithSHAAnd128BitRC2-CBC",
              "1.2.840.113549.1.12.1.6": "pbeWithSHAAnd40BitRC2-CBC"}
MAX_ITERATIONS = 10_000_000  # more is no real file: a damaged one, which would keep openssl busy for minutes


class Password:
    """The PKCS#12 password, fetched once and only when needed."""

    def __init__(self, file: str | None):
        self.file, self.value = file, None

    def get(self) -> str:
        if self.value is None:
            if self.file:
                try:
                    with open(self.file, encoding="utf-8") as f:
                        self.value = f.read().rstrip("\r\n")
                except OSError as e:
                    raise InputError(f"password file {self.file}: {e.strerror}") from None
            elif "WVDS_P12_PASSWORD" in os.environ:
                self.value = os.environ["WVDS_P12_PASSWORD"]
            elif sys.stdin.isatty():
                self.value = getpass.getpass("PKCS#12 password: ")
            else:
                self.value = ""
        return self.value


class Bags:
    """What the unencrypted parts of a PKCS#12 file hold."""

    def __init__(self):
        self.certs: list = []  # (DER, friendly name or None)
        self.keys = 0
        self.notes: list = []


def _iterations(node: Node) -> None:
    if not 1 <= integer(node) <= MAX_ITERATIONS:
        raise InputError(f"PKCS#12: implausible iteration count {integer(node)}")


def _mac_iterations(mac_data: list) -> None:
    alg = seq(seq(mac_data[0], "PKCS#12 MAC", 2)[0], "PKCS#12 MAC algorithm", 1)
    if oid_text(alg[0]) == OID_PBMAC1:
        kdf = seq(seq(alg[1], "PBMAC1 parameters", 2)[0], "PBMAC1 KDF", 2)
        if oid_text(kdf[0]) == OID_PBKDF2:
            _iterations(seq(kdf[1], "PBKDF2 parameters", 2)[1])
    elif len(mac_data) > 2:
        _iterations(mac_data[2])


def _encryption(alg: Node) -> str:
    """The name of a PKCS#12 part's encryption (its parameters checked for plausibility, nothing decrypted)."""
    parts = seq(alg, "encryption algorithm", 2)
    oid = oid_text(parts[0])
    if oid in LEGACY_PBE:
        _iterations(seq(parts[1], "PBE parameters", 2)[1])
        return LEGACY_PBE[oid]
    if oid != OID_PBES2:
        raise InputError(f"PKCS#12: unsupported encryption {oid}")
    kdf = seq(seq(parts[1], "PBES2 parameters", 2)[0], "PBES2 KDF", 2)
    if oid_text(kdf[0]) == OID_PBKDF2:
        _iterations(seq(kdf[1], "PBKDF2 parameters", 2)[1])
    return "PBES2"


def _load_pkcs12(top: Node, password_source, kind: str, openssl: str | None) -> Loaded:
    out = Loaded(f"{kind} PKCS#12")
    pfx = top.children
    if integer(pfx[0]) != 3:
        raise InputError(f"PKCS#12 version {integer(pfx[0])} (only version 3 exists)")
    auth = seq(pfx[1], "PKCS#12 authSafe", 2)
    if oid_text(auth[0]) != OID_DATA:
        raise InputError("PKCS#12 in public-key integrity mode is not supported")
    plain, encrypted = Bags(), []
    for ci in seq(parse_der(auth[1].children[0].octets()), "PKCS#12 AuthenticatedSafe"):
        parts = seq(ci, "PKCS#12 ContentInfo", 1)
        oid = oid_text(parts[0])
        if oid == OID_DATA:
            _bags(parse_der(parts[1].children[0].octets()), plain)
        elif oid == OID_ENCRYPTED_DATA:
            enc = seq(parts[1].children[0], "PKCS#12 EncryptedData", 2)
            encrypted.append(_encryption(seq(enc[1], "PKCS#12 EncryptedContentInfo", 2)[1]))
        elif oid == OID_ENVELOPED_DATA:
            plain.notes.append("contains an enveloped (public-key encrypted) part, not readable without its key")
        else:
            plain.notes.append(f"contains a part of type {oid} (ignored)")
    mac = len(pfx) >= 3
    if mac:
        _mac_iterations(seq(pfx[2], "PKCS#12 MacData", 2))
    certs, extra_keys, by = plain.certs, 0, None
    if mac or encrypted:
        opened = _open(top.raw, password_source.get() if password_source else "", openssl, encrypted)
        certs, extra_keys, by = opened.certs, max(0, opened.keys - plain.keys), opened.by
    for der, name in certs:
        out.certs.append(_cert(der, "PKCS#12 certificate"))
        if name:
            out.notes.append(f"certificate {len(out.certs)} is named {name!r}")
    out.notes += plain.notes + ["contains a private key (not extracted)"] * extra_keys
    if by:
        done = " and ".join(w for w, yes in (("integrity (MAC) checked", mac), ("decrypted", encrypted)) if yes)
        out.notes.append(f"{done} via {by}")
    return out


def _open(der: bytes, password: str, openssl: str | None, encrypted: list) -> Opened:
    try:
        return open_pkcs12(der, password, openssl)
    except Unsupported as e:
        legacy = [a for a in encrypted if a in LEGACY_PBE.values()]
        if not legacy:
            raise InputError(f"PKCS#12: {e}") from None
        raise InputError(f"PKCS#12: the certificates are encrypted with {legacy[0]} (legacy), which {e.openssl} "
                         "cannot decrypt (no legacy provider) and pyca/cryptography is not installed; re-export the "
                         "file with AES (e.g. on a machine with OpenSSL's legacy provider: 'openssl pkcs12 -legacy "
                         "-in OLD.p12 -nokeys -out certs.pem') or install python3-cryptography") from None


def _bags(safe_contents: Node, out: Bags) -> None:
    for bag in seq(safe_contents, "PKCS#12 SafeContents"):
        parts = seq(bag, "PKCS#12 SafeBag", 2)
        bag_id, value = oid_text(parts[0]), parts[1].children[0]
        name = None
        if len(parts) > 2:
            for attr in parts[2].children:
                a = seq(attr, "PKCS#12 attribute", 2)
                if oid_text(a[0]) == OID_FRIENDLY_NAME and a[1].children:
                    name = string_value(a[1].children[0])
        if bag_id == BAG_CERT:
            cert_bag = seq(value, "PKCS#12 CertBag", 2)
            if oid_text(cert_bag[0]) == OID_X509_CERT:
                out.certs.append((cert_bag[1].children[0].octets(), name))
        elif bag_id in (BAG_KEY, BAG_SHROUDED):
            out.keys += 1
            out.notes.append("contains a private key" + (f" named {name!r}" if name else "") + " (not extracted)")
        elif bag_id == BAG_SAFE:
            _bags(value, out)
        else:
            out.notes.append(f"contains a bag of type {bag_id} (ignored)")


# --- commands -------------------------------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def load_file(path: str, args) -> Loaded:
    try:
        loaded = load(read_input(path), Password(getattr(args, "password_file", None)), getattr(args, "openssl", None))
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    if not loaded.certs:
        raise InputError(f"{path}: no certificates in this {loaded.kind}")
    return loaded


def cmd_show(args) -> int:
    now = _now()
    docs = []
    for path in args.files:
        loaded = load_file(path, args)
        items = [c.describe(now) for c in loaded.certs]
        if args.json:
            docs.append({"file": path, "format": loaded.kind, "certificates": items, "notes": loaded.notes})
            continue
        print(f"{path}: {loaded.kind}, {len(items)} certificate{'s' if len(items) != 1 else ''}")
        for note in loaded.notes:
            print(f"  note: {note}")
        for i, d in enumerate(items, 1):
            print(f"  [{i}] subject:    {d['subject']}")
            print(f"      issuer:     {d['issuer']}" + ("  (self-issued)" if d["self_issued"] else ""))
            print(f"      serial:     {d['serial']}")
            print(f"      validity:   {d['not_before']} .. {d['not_after']}  ({d['state']})")
            print(f"      key:        {d['key']} ({d['public_key_bytes']}-byte public key)")
            print(f"      signature:  {d['signature']}")
            print(f"      SHA-256:    {d['sha256']}")
            print(f"      SHA-1:      {d['sha1']}")
            ca = {None: "not stated (no basicConstraints)", True: "yes", False: "no"}[d["ca"]]
            if d.get("path_length") is not None:
                ca += f", path length {d['path_length']}"
            print(f"      CA:         {ca}")
            for key, title in (("key_usage", "key usage"), ("extended_key_usage", "ext. usage"),
                               ("subject_alt_names", "alt. names")):
                if key in d:
                    print(f"      {title + ':':11} {', '.join(d[key])}")
    if args.json:
        print(json.dumps(docs, indent=2))
    return 0


def cmd_split(args) -> int:
    loaded = load_file(args.file, args)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise InputError(f"{args.out}: {e.strerror}") from None
    for i, cert in enumerate(loaded.certs, 1):
        name = os.path.join(args.out, f"{i:02d}-{cert.label()}.{'der' if args.der else 'pem'}")
        _write(name, cert.der if args.der else cert.to_pem().encode())
        print(f"{name}: {cert.subject}")
    return 0


def cmd_convert(args) -> int:
    loaded = load_file(args.input, args)
    fmt = args.to or ("der" if args.output.lower().endswith((".der", ".cer")) else "pem")
    certs = loaded.certs
    if args.index is not None:
        if not 1 <= args.index <= len(certs):
            raise InputError(f"{args.input}: --index {args.index}: it holds {len(certs)} certificate(s)")
        certs = [certs[args.index - 1]]
    if fmt == "der":
        if len(certs) != 1:
            raise InputError(f"{args.input}: holds {len(certs)} certificates; DER holds one: use --index N or split")
        _write(args.output, certs[0].der)
    else:
        _write(args.output, "".join(c.to_pem() for c in certs).encode())
    print(f"{args.output}: {len(certs)} certificate{'s' if len(certs) != 1 else ''} as {fmt.upper()}")
    return 0


def _write(path: str, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from None


def build_chain(leaf: Certificate, pool: list) -> list:
    """leaf, then each issuer found in pool by name (and key identifier when both are present)."""
    chain = [leaf]
    while not chain[-1].self_issued and len(chain) < 16:
        cur = chain[-1]
        issuers = [c for c in pool if c.subject_node.raw == cur.issuer_node.raw
                   and (cur.aki is None or c.ski is None or cur.aki == c.ski) and c not in chain]
        if not issuers:
            break
        chain.append(issuers[0])
    return chain


def cmd_verify(args) -> int:
    now = _now()
    leaf_loaded = load_file(args.cert, args)
    roots = [c for path in args.ca for c in load_file(path, args).certs]
    untrusted = [c for path in (args.untrusted or []) for c in load_file(path, args).certs]
    untrusted += leaf_loaded.certs[1:]  # a chain file: leaf first
    leaf = leaf_loaded.certs[0]
    chain = build_chain(leaf, untrusted + roots)
    problems = []
    print(f"chain of {args.cert}:")
    for i, c in enumerate(chain):
        trust = " (trust anchor)" if any(c.der == r.der for r in roots) else ""
        print(f"  {i}: {c.subject}  [{c.key_type}, {c.validity_state(now)}]{trust}")
        if c.validity_state(now) != "valid now":
            problems.append(f"{c.subject}: {c.validity_state(now).lower()} "
                            f"({c.not_before:%Y-%m-%d} .. {c.not_after:%Y-%m-%d})")
        if i > 0:
            ca, pathlen, _ = c.basic_constraints
            if not ca:
                problems.append(f"{c.subject}: issues certificates but is not a CA (basicConstraints)")
            if c.key_usage and "keyCertSign" not in c.key_usage:
                problems.append(f"{c.subject}: issues certificates but its key usage lacks keyCertSign")
            if pathlen is not None and i - 1 > pathlen:
                problems.append(f"{c.subject}: path length {pathlen} exceeded")
    if not any(c.der == r.der for c in chain for r in roots):
        problems.append(f"the chain does not reach a certificate of {', '.join(args.ca)} "
                        f"(it ends at {chain[-1].issuer})")
    for p in problems:
        print(f"  problem: {p}")
    if problems:
        print("verification FAILED")
        return 1
    openssl = find_openssl(args.openssl)
    if openssl is None:
        print("names, validity and CA flags are consistent, but the SIGNATURES WERE NOT CHECKED: no OpenSSL 3.5 "
              "or later found (the delivery's bin/<arch>/openssl; or --openssl PATH)")
        return 3
    with tempfile.TemporaryDirectory(prefix="extract_certs-") as tmp:
        files = {}
        for name, certs in (("ca", roots), ("untrusted", [c for c in chain[1:] if c not in roots]),
                            ("leaf", [leaf])):
            files[name] = os.path.join(tmp, name + ".pem")
            with open(files[name], "w") as f:
                f.write("".join(c.to_pem() for c in certs))
        cmd = [openssl, "verify", "-CAfile", files["ca"]]
        if len(chain) > 2:
            cmd += ["-untrusted", files["untrusted"]]
        cmd.append(files["leaf"])
        r = subprocess.run(cmd, capture_output=True, text=True)
    out = (r.stdout + r.stderr).replace(files["leaf"], args.cert).strip()
    if r.returncode == 0:
        print(f"signatures checked by {openssl}: OK")
        return 0
    print(f"signatures checked by {openssl}: FAILED\n  " + out.replace("\n", "\n  "))
    return 1


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="WvdS certificate tool: show, split, convert, verify "
                                 "certificates from PEM, DER, PKCS#7 (EST) and PKCS#12 files.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    pw = argparse.ArgumentParser(add_help=False)
    pw.add_argument("--password-file", metavar="FILE", help="PKCS#12 password (else $WVDS_P12_PASSWORD or a prompt)")
    s = sub.add_parser("show", parents=[pw], help="describe every certificate in the files")
    s.add_argument("files", nargs="+", metavar="FILE", help="input file ('-' for stdin)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_show)
    s = sub.add_parser("split", parents=[pw], help="write each certificate to its own file")
    s.add_argument("file", metavar="FILE")
    s.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory (created if missing)")
    s.add_argument("--der", action="store_true", help="write DER instead of PEM")
    s.set_defaults(func=cmd_split)
    s = sub.add_parser("convert", parents=[pw], help="PEM <-> DER (also out of PKCS#7 / PKCS#12)")
    s.add_argument("input", metavar="IN")
    s.add_argument("output", metavar="OUT")
    s.add_argument("--to", choices=("pem", "der"), help="output format (default: from OUT's extension, else PEM)")
    s.add_argument("--index", type=int, metavar="N", help="only the N-th certificate (1-based)")
    s.set_defaults(func=cmd_convert)
    s = sub.add_parser("verify", parents=[pw], help="verify a certificate chain up to trust anchors")
    s.add_argument("cert", metavar="CERT", help="the certificate (or a chain file, leaf first)")
    s.add_argument("--ca", action="append", required=True, metavar="FILE", help="trust anchors (repeatable)")
    s.add_argument("--untrusted", action="append", metavar="FILE", help="intermediate CAs (repeatable)")
    s.add_argument("--openssl", metavar="PATH",
                   help='OpenSSL 3.5+ to check signatures (and read PKCS#12) with ("none": check the structure only)')
    s.set_defaults(func=cmd_verify)
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if not getattr(args, "func", None):
        ap.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except InputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug, or input this tool does not understand: one line, no traceback
        if os.environ.get("WVDS_DEBUG"):
            raise
        print(f"{PROG}: error: cannot process the input ({type(e).__name__}: {e}); set WVDS_DEBUG=1 for details",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
