"""/csrattrs: what the server asks a CSR to contain, turned into a `CsrPolicy` we can apply.

Understood (everything else is ignored, as RFC 7030 4.5.2 requires, and logged):

* RFC 9908 template (id-aa-certificationRequestInfoTemplate): when present, only it
  is used (RFC 9908 section 4). Its subject gives the RDN types in order, each
  with a value the server dictates or none (we fill it from the configured subject);
  its subjectPKInfo names the key type; its extensionRequest / extensionReqTemplate
  give extensions with or without values.
* RFC 7030/9908 legacy elements: an extensionRequest attribute (extensions with
  values); a key-type OID or attribute (id-ml-dsa-*, id-ecPublicKey with a named
  curve); subject attribute type OIDs (filled from the configured subject if it has
  them); challengePassword (noted: we cannot link identity and PoP that way, see
  docs/est.md).

Extensions without a value that we can fill: subjectAltName (from the config or the
current certificate), keyUsage (digitalSignature), basicConstraints (cA false).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from asn1crypto import core, x509

from wvds.est_service import asn1
from wvds.est_service.errors import ProtocolError

log = logging.getLogger("wvds.est.csrattrs")

SIGNATURE_HINTS = {**asn1.ECDSA_SIG_OIDS}  # signature OIDs: hints only (we pick the hash by curve)


@dataclass
class CsrPolicy:
    key_algorithm: str | None = None  # ossl name the server wants, if any we support
    unsupported_key: str | None = None  # a key type it wants that we cannot make
    subject_template: list[tuple[str, str | None]] | None = None  # (attribute OID, dictated DER value or None)
    subject_types: list[str] = field(default_factory=list)  # legacy: attribute type OIDs wanted in the subject
    extensions: list[tuple[str, bool, bytes | None]] = field(default_factory=list)  # (oid, critical, DER or None)
    challenge_password: bool = False
    ignored: list[str] = field(default_factory=list)
    template: bool = False


def parse(der: bytes) -> CsrPolicy:
    """The policy in a CsrAttrs body; ProtocolError for anything malformed.

    asn1crypto parses nested values lazily (on first access), so malformed inner
    elements surface as any of asn1.MALFORMED wherever they are first touched; all of
    them are the server's malformed answer, never our error."""
    try:
        return _parse(der)
    except ProtocolError:
        raise
    except asn1.MALFORMED as e:
        raise ProtocolError(f"csrattrs: malformed CsrAttrs: {e}") from None


def _parse(der: bytes) -> CsrPolicy:
    try:
        attrs = asn1.CsrAttrs.load(der, strict=True)
        items = list(attrs)
        for it in items:  # parse each element now, so malformed input fails here
            if it.name == "attribute":
                list(it.chosen["values"])
            else:
                it.chosen.dotted
    except (ValueError, TypeError) as e:
        raise ProtocolError(f"csrattrs: malformed CsrAttrs: {e}") from None
    policy = CsrPolicy()
    template = [it.chosen for it in items if it.name == "attribute" and it.chosen["type"].dotted == asn1.CRI_TEMPLATE]
    if template:
        policy.template = True
        _apply_template(policy, template[0])
        return policy
    for it in items:
        if it.name == "oid":
            _legacy_oid(policy, it.chosen.dotted, None)
        else:
            a = it.chosen
            _legacy_oid(policy, a["type"].dotted, list(a["values"]))
    return policy


def _key_from(policy: CsrPolicy, oid: str, params: core.Asn1Value | None) -> bool:
    if oid in asn1.ML_DSA_OIDS:
        policy.key_algorithm = asn1.ML_DSA_OIDS[oid]
        return True
    if oid == asn1.EC_PUBLIC_KEY:
        curve = None
        if params is not None and params.dump():
            try:
                curve = core.ObjectIdentifier.load(params.dump()).dotted
            except ValueError:
                curve = None
        if curve is None:
            return True  # an EC key of no particular curve: any of ours will do
        if curve in asn1.EC_CURVES:
            policy.key_algorithm = asn1.EC_CURVES[curve]
        else:
            policy.unsupported_key = f"EC curve {curve}"
        return True
    if oid in ("1.2.840.113549.1.1.1", "1.3.101.112", "1.3.101.113"):  # RSA, Ed25519, Ed448: not offered
        policy.unsupported_key = oid
        return True
    return False


def _legacy_oid(policy: CsrPolicy, oid: str, values: list | None) -> None:
    if oid == asn1.CHALLENGE_PASSWORD:
        policy.challenge_password = True
    elif oid == asn1.EXTENSION_REQUEST and values:
        for ext in asn1.AnyExtensions.load(values[0].dump()):
            policy.extensions.append((ext["extn_id"].dotted, bool(ext["critical"].native), ext["extn_value"].native))
    elif _key_from(policy, oid, values[0] if values else None):
        pass
    elif oid in SIGNATURE_HINTS or oid in asn1.ML_DSA_OIDS:
        pass
    elif oid in x509.NameType._map:
        policy.subject_types.append(oid)
    else:
        policy.ignored.append(oid)


def _apply_template(policy: CsrPolicy, attribute) -> None:
    values = list(attribute["values"])
    if len(values) != 1:
        raise ProtocolError("csrattrs: certificationRequestInfoTemplate must have exactly one value")
    try:
        t = asn1.CertificationRequestInfoTemplate.load(values[0].dump(), strict=True)
        for name in ("version", "subject", "subject_pk_info", "attributes"):
            t[name]  # noqa: B018 - parse every field now
    except (ValueError, TypeError) as e:
        raise ProtocolError(f"csrattrs: malformed certificationRequestInfoTemplate: {e}") from None
    if t["version"].native != 0:
        raise ProtocolError("csrattrs: template version is not v1")
    if t["subject"].native is not None:
        policy.subject_template = []
        for rdn in t["subject"]:
            for atv in rdn:
                value = atv["value"]
                dictated = value.dump() or None  # absent (Void) dumps to b""
                policy.subject_template.append((atv["type"].dotted, dictated))
    spki = t["subject_pk_info"]
    if spki.native is not None:
        alg = spki["algorithm"]
        params = alg["parameters"] if alg["parameters"].dump() else None
        if not _key_from(policy, alg["algorithm"].dotted, params):
            policy.unsupported_key = alg["algorithm"].dotted
    for a in t["attributes"]:
        oid = a["type"].dotted
        vals = list(a["values"])
        if oid == asn1.EXTENSION_REQUEST and vals:
            for ext in asn1.AnyExtensions.load(vals[0].dump()):
                policy.extensions.append((ext["extn_id"].dotted, bool(ext["critical"].native),
                                          ext["extn_value"].native))
        elif oid == asn1.EXT_REQ_TEMPLATE and vals:
            for ext in asn1.ExtensionTemplates.load(vals[0].dump()):
                value = ext["extn_value"].native if ext["extn_value"].native is not None else None
                policy.extensions.append((ext["extn_id"].dotted, bool(ext["critical"].native), value))
        elif oid == asn1.CHALLENGE_PASSWORD:
            policy.challenge_password = True
        else:
            policy.ignored.append(oid)


def default_extension_value(oid: str) -> bytes | None:
    """A value for an extension the server asks for without one, where a device has an obvious answer."""
    if oid == asn1.KEY_USAGE:
        return x509.KeyUsage({"digital_signature"}).dump()
    if oid == asn1.BASIC_CONSTRAINTS:
        return x509.BasicConstraints({"ca": False}).dump()
    return None
