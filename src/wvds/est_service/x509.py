"""Certificates as est_service sees them: parsed once, with the fields the decisions need.

`Cert` wraps an asn1crypto certificate and keeps its exact DER (signatures are
over the bytes as received, never over a re-encoding). Names are compared the
RFC 5280 way (asn1crypto normalizes case and spaces of string attributes).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from functools import cached_property

from asn1crypto import pem, x509

from wvds.est_service import asn1
from wvds.est_service.errors import ProtocolError

UTC = dt.timezone.utc

# config short names -> asn1crypto NameType names (order in the config is kept)
NAME_ATTRIBUTES = {
    "CN": "common_name", "O": "organization_name", "OU": "organizational_unit_name", "C": "country_name",
    "L": "locality_name", "ST": "state_or_province_name", "serialNumber": "serial_number",
    "emailAddress": "email_address", "DC": "domain_component", "UID": "user_id", "title": "title",
    "pseudonym": "pseudonym", "organizationIdentifier": "organization_identifier",
}
NAME_ATTRIBUTE_OIDS = {short: x509.NameType.unmap(long) for short, long in NAME_ATTRIBUTES.items()}
SAN_KINDS = {"dns": "dns_name", "ip": "ip_address", "uri": "uniform_resource_identifier", "email": "rfc822_name"}


@dataclass(frozen=True)
class PublicKey:
    algorithm: str  # wvds.ossl name: ML-DSA-44/65/87, EC-P-256, EC-P-384; "" if unsupported
    raw: bytes  # FIPS 204 public key, or the EC point as encoded
    spki_der: bytes
    description: str  # for messages, e.g. "rsa" or an OID


def public_key_of(spki) -> PublicKey:
    """The key of a SubjectPublicKeyInfo (asn1crypto keys.PublicKeyInfo)."""
    alg = spki["algorithm"]
    oid = alg["algorithm"].dotted
    der = spki.dump()
    if oid in asn1.ML_DSA_OIDS:
        if alg.contents != alg["algorithm"].dump():  # anything after the OID: parameters present
            return PublicKey("", b"", der, f"{asn1.ML_DSA_OIDS[oid]} with parameters (RFC 9881 requires none)")
        return PublicKey(asn1.ML_DSA_OIDS[oid], spki["public_key"].native, der, asn1.ML_DSA_OIDS[oid])
    if oid == asn1.EC_PUBLIC_KEY:
        params = alg["parameters"]
        curve = params.chosen.dotted if params.name == "named" else ""
        name = asn1.EC_CURVES.get(curve, "")
        return PublicKey(name, bytes(spki["public_key"].native if name else b""), der, name or f"EC curve {curve}")
    return PublicKey("", b"", der, str(alg["algorithm"].native))


class Cert:
    """One X.509 certificate (immutable)."""

    def __init__(self, der: bytes):
        try:
            self.asn1 = x509.Certificate.load(bytes(der), strict=True)
            self.tbs = self.asn1["tbs_certificate"]
            self.tbs.native  # parse everything now: a malformed field fails here, not later
        except asn1.MALFORMED as e:
            raise ProtocolError(f"malformed certificate: {e}") from None
        self.der = bytes(der)

    @classmethod
    def from_pem_text(cls, text: bytes) -> list["Cert"]:
        """Every CERTIFICATE block of a PEM file (other blocks are ignored)."""
        if not pem.detect(text):
            raise ProtocolError("not a PEM file")
        return [cls(der) for kind, _h, der in pem.unarmor(text, multiple=True) if kind == "CERTIFICATE"]

    @property
    def pem(self) -> str:
        return pem.armor("CERTIFICATE", self.der).decode()

    @cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    @property
    def subject(self) -> x509.Name:
        return self.asn1.subject

    @property
    def issuer(self) -> x509.Name:
        return self.asn1.issuer

    @property
    def subject_text(self) -> str:
        return self.asn1.subject.human_friendly

    @property
    def serial_hex(self) -> str:
        return format(self.asn1.serial_number, "x")

    @property
    def not_before(self) -> dt.datetime:
        return self.tbs["validity"]["not_before"].native

    @property
    def not_after(self) -> dt.datetime:
        return self.tbs["validity"]["not_after"].native

    @cached_property
    def public_key(self) -> PublicKey:
        return public_key_of(self.tbs["subject_public_key_info"])

    @property
    def is_ca(self) -> bool:
        return bool(self.asn1.ca)

    @property
    def path_len(self) -> int | None:
        return self.asn1.max_path_length

    @property
    def key_usage(self) -> set[str] | None:
        ku = self.asn1.key_usage_value
        return None if ku is None else set(ku.native)

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer

    @property
    def critical_extensions(self) -> set[str]:
        return {e["extn_id"].dotted for e in self.tbs["extensions"] if e["critical"].native}

    @cached_property
    def san_der(self) -> bytes | None:
        """DER of the subjectAltName extension value (GeneralNames), if present."""
        for e in self.tbs["extensions"]:
            if e["extn_id"].dotted == asn1.SUBJECT_ALT_NAME:
                return e["extn_value"].contents
        return None

    @property
    def san_text(self) -> list[str]:
        v = self.asn1.subject_alt_name_value
        return [] if v is None else [f"{n.name}:{n.native}" for n in v]

    @property
    def subject_key_id(self) -> bytes | None:
        return self.asn1.key_identifier

    @property
    def authority_key_id(self) -> bytes | None:
        return self.asn1.authority_key_identifier

    def valid_at(self, when: dt.datetime, skew_s: float = 0) -> bool:
        try:
            return self.not_before - dt.timedelta(seconds=skew_s) <= when <= self.not_after
        except (TypeError, ValueError, OverflowError):  # year 0000 (asn1crypto's extended_datetime): never valid
            return False

    def __eq__(self, other) -> bool:
        return isinstance(other, Cert) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)

    def __repr__(self) -> str:
        return f"<Cert {self.subject_text!r} serial {self.serial_hex} until {self.not_after:%Y-%m-%dT%H:%M:%SZ}>"


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def build_name(pairs: list[tuple[str, str]]) -> x509.Name:
    """A Name with one attribute per RDN, in the given order; pairs are (short name or dotted OID, value)."""
    rdns = []
    for key, value in pairs:
        long = NAME_ATTRIBUTES.get(key, key)
        one = x509.Name.build({long: value})  # picks the right string type for the attribute
        rdns.append(one.chosen[0])
    return x509.Name(name="", value=x509.RDNSequence(rdns))


def build_san(san: dict[str, list[str]]) -> bytes | None:
    """GeneralNames DER from {"dns": [...], "ip": [...], "uri": [...], "email": [...]}, None if empty."""
    names = []
    for kind, values in san.items():
        for v in values:
            if kind == "ip":
                v = str(ipaddress.ip_address(v))
            names.append(x509.GeneralName(name=SAN_KINDS[kind], value=v))
    return x509.GeneralNames(names).dump() if names else None


def pem_bundle(certs: list[Cert]) -> str:
    return "".join(c.pem for c in certs)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
