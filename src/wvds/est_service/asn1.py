"""ASN.1 that asn1crypto 1.5.1 lacks: ML-DSA identifiers, CSR attributes, RFC 9908 templates.

asn1crypto is pure Python (no second libcrypto in the process; every signature
is checked by wvds.ossl in the FIPS provider). It predates ML-DSA, so this
module teaches it RFC 9881's identifiers before anything parses a certificate:
the public key of an id-ml-dsa-* SubjectPublicKeyInfo is an opaque BIT STRING
(the FIPS 204 encoding) and the AlgorithmIdentifier has *absent* parameters.
Import this module before parsing (every est_service module that parses does).
"""
from __future__ import annotations

from asn1crypto import algos, core, csr, keys, x509

from wvds.algorithms import REGISTRY

# What asn1crypto raises for malformed DER. It parses lazily and does not wrap its errors: besides
# ValueError, fuzzing found TypeError, KeyError, AttributeError ('InstanceOf' has no 'native') and
# IndexError (an empty BIT STRING). Every parser of server input treats all of them as "malformed".
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)

# --- object identifiers -----------------------------------------------------------

# From the algorithm registry (wvds.algorithms): OID -> ossl name
ML_DSA_OIDS = {i.oid: i.ossl_name for i in REGISTRY.values() if i.family == "ML-DSA"}  # RFC 9881
ML_DSA_BY_NAME = {v: k for k, v in ML_DSA_OIDS.items()}
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
EC_CURVES = {i.oid: i.ossl_name for i in REGISTRY.values() if i.family == "EC"}  # secp256r1, secp384r1
EC_CURVE_BY_NAME = {v: k for k, v in EC_CURVES.items()}
ECDSA_SIG_OIDS = {  # signature OID -> digest name for wvds.ossl
    "1.2.840.10045.4.3.2": "SHA256", "1.2.840.10045.4.3.3": "SHA384", "1.2.840.10045.4.3.4": "SHA512",
}
# the signature an EC device key makes: with its curve's hash (the registry's default digest)
ECDSA_SIG_FOR_KEY = {i.ossl_name: (next(o for o, d in ECDSA_SIG_OIDS.items() if d == i.default_digest),
                                   i.default_digest) for i in REGISTRY.values() if i.family == "EC"}

EXTENSION_REQUEST = "1.2.840.113549.1.9.14"  # PKCS#9 extensionRequest
CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"
CRI_TEMPLATE = "1.2.840.113549.1.9.16.2.61"  # id-aa-certificationRequestInfoTemplate (RFC 9908)
EXT_REQ_TEMPLATE = "1.2.840.113549.1.9.16.2.62"  # id-aa-extensionReqTemplate (RFC 9908)
SUBJECT_ALT_NAME = "2.5.29.17"
KEY_USAGE = "2.5.29.15"
BASIC_CONSTRAINTS = "2.5.29.19"

_ML_DSA_ASN1_NAMES = {oid: name.lower().replace("-", "_") for oid, name in ML_DSA_OIDS.items()}  # ml_dsa_44


def _register() -> None:
    for cls in (keys.PublicKeyAlgorithmId, algos.SignedDigestAlgorithmId):
        cls._map.update(_ML_DSA_ASN1_NAMES)
        cls._reverse_map = None  # rebuilt from _map on next use
    original = keys.PublicKeyInfo._public_key_spec

    def public_key_spec(self):
        if self["algorithm"]["algorithm"].native in _ML_DSA_ASN1_NAMES.values():
            return (keys.OctetBitString, None)
        return original(self)

    keys.PublicKeyInfo._spec_callbacks = {"public_key": public_key_spec}


_register()


def oid_of(value: core.ObjectIdentifier) -> str:
    """Dotted form of an ObjectIdentifier whatever asn1crypto maps it to."""
    return value.dotted


# --- CSR attributes (RFC 7030 4.5.2, RFC 9908) ------------------------------------------

class SetOfAny(core.SetOf):
    _child_spec = core.Any


class AnyAttribute(core.Sequence):
    """Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET OF ANY } (values parsed on demand)."""
    _fields = [("type", core.ObjectIdentifier), ("values", SetOfAny)]


class AttrOrOID(core.Choice):
    _alternatives = [("oid", core.ObjectIdentifier), ("attribute", AnyAttribute)]


class CsrAttrs(core.SequenceOf):
    _child_spec = AttrOrOID


class SingleAttributeTemplate(core.Sequence):
    _fields = [("type", core.ObjectIdentifier), ("value", core.Any, {"optional": True})]


class RelativeDistinguishedNameTemplate(core.SetOf):
    _child_spec = SingleAttributeTemplate


class RDNSequenceTemplate(core.SequenceOf):
    _child_spec = RelativeDistinguishedNameTemplate


class AlgorithmIdentifier(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class SubjectPublicKeyInfoTemplate(core.Sequence):
    _fields = [("algorithm", AlgorithmIdentifier), ("subject_public_key", core.BitString, {"optional": True})]


class AnyAttributes(core.SetOf):
    _child_spec = AnyAttribute


class CertificationRequestInfoTemplate(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("subject", RDNSequenceTemplate, {"optional": True}),  # NameTemplate: its only alternative
        ("subject_pk_info", SubjectPublicKeyInfoTemplate, {"implicit": 0, "optional": True}),
        ("attributes", AnyAttributes, {"implicit": 1}),
    ]


class ExtensionTemplate(core.Sequence):
    _fields = [("extn_id", core.ObjectIdentifier), ("critical", core.Boolean, {"default": False}),
               ("extn_value", core.OctetString, {"optional": True})]


class ExtensionTemplates(core.SequenceOf):
    _child_spec = ExtensionTemplate


class AnyExtension(core.Sequence):
    """Extension with its value kept as raw bytes (whatever the type)."""
    _fields = [("extn_id", core.ObjectIdentifier), ("critical", core.Boolean, {"default": False}),
               ("extn_value", core.OctetString)]


class AnyExtensions(core.SequenceOf):
    _child_spec = AnyExtension


# --- building blocks for CSRs -------------------------------------------------------------

def extension_request_attribute(extensions: list[tuple[str, bool, bytes]]) -> csr.CRIAttribute:
    """extensionRequest attribute from (oid, critical, DER value) triples, in the given order."""
    exts = x509.Extensions([x509.Extension({"extn_id": oid, "critical": crit,
                                            "extn_value": core.ParsableOctetString(value)})
                            for oid, crit, value in extensions])
    return csr.CRIAttribute({"type": "extension_request", "values": csr.SetOfExtensions([exts])})
