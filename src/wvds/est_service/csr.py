"""PKCS#10 certification requests (RFC 2986) signed by the device key in crypto_service.

The request is assembled here with asn1crypto; only the to-be-signed bytes go to
crypto_service, which returns the signature. Before a CSR leaves the device its
signature is verified once with wvds.ossl (FIPS): a key or encoding problem shows
up here, not as a puzzling rejection by the CA.

ML-DSA: signatureAlgorithm id-ml-dsa-44/65/87 with absent parameters, pure mode,
empty context (RFC 9881). ECDSA: ecdsa-with-SHA256 (P-256) / -SHA384 (P-384).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from asn1crypto import core, csr, keys, x509

from wvds.est_service import asn1
from wvds.est_service.chain import verify_signature
from wvds.est_service.errors import EstError
from wvds.est_service.keys import DeviceKey, KeyService
from wvds.est_service.x509 import public_key_of


@dataclass
class CsrContent:
    """What goes into a request, before it is signed."""
    subject: x509.Name
    extensions: list[tuple[str, bool, bytes]] = field(default_factory=list)  # (oid, critical, DER value)
    attributes: list[csr.CRIAttribute] = field(default_factory=list)  # other attributes, as given


@dataclass(frozen=True)
class SignedCsr:
    der: bytes
    subject: x509.Name
    spki_der: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()


def build(content: CsrContent, key: DeviceKey, signer: KeyService) -> SignedCsr:
    spki_der = key.spki_der
    attributes = list(content.attributes)
    if content.extensions:
        attributes.insert(0, asn1.extension_request_attribute(content.extensions))
    info = csr.CertificationRequestInfo({
        "version": "v1",
        "subject": content.subject,
        "subject_pk_info": keys.PublicKeyInfo.load(spki_der),
        "attributes": csr.CRIAttributes(attributes),
    })
    tbs = _with_attributes_field(info.dump())
    sig_oid, signature = signer.sign(key, tbs)
    der = (_seq(tbs + core.Sequence(contents=core.ObjectIdentifier(sig_oid).dump()).dump()
                + core.OctetBitString(signature).dump()))
    check(der)
    return SignedCsr(der, content.subject, spki_der)


def check(der: bytes) -> csr.CertificationRequest:
    """Parse a CSR and verify its self-signature (FIPS); EstError if either fails."""
    try:
        req = csr.CertificationRequest.load(der, strict=True)
        info = req["certification_request_info"]
        key = public_key_of(info["subject_pk_info"])
        ok = verify_signature(info.dump(), req["signature_algorithm"], req["signature"].native, key)
    except (ValueError, TypeError, KeyError) as e:
        raise EstError(f"built a malformed CSR: {e}") from None
    if not ok:
        raise EstError("the CSR signature made by crypto_service does not verify")
    return req


def _with_attributes_field(tbs: bytes) -> bytes:
    """PKCS#10 requires the [0] attributes field even when empty; asn1crypto omits an empty optional field."""
    req = csr.CertificationRequestInfo.load(tbs)
    if len(req["attributes"]) or _has_attributes(tbs):
        return tbs
    inner = req["version"].dump() + req["subject"].dump() + req["subject_pk_info"].dump() + b"\xa0\x00"
    return _seq(inner)


def _has_attributes(tbs: bytes) -> bool:
    req = csr.CertificationRequestInfo.load(tbs)
    consumed = len(req["version"].dump()) + len(req["subject"].dump()) + len(req["subject_pk_info"].dump())
    return len(req.contents) > consumed


def _seq(contents: bytes) -> bytes:
    return core.Sequence(contents=contents).dump()

