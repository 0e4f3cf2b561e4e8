"""Certification path validation: does this certificate chain to one of our trust anchors?

A deliberately small subset of RFC 5280 6.1, enough for an EST client deciding
whether to install a certificate it just received; every signature is verified by
wvds.ossl in the FIPS provider (ML-DSA pure mode with empty context per RFC 9881;
ECDSA with SHA-256/384/512). Checked for every certificate on the path: the
issuer's name matches (and its key identifier, where both are present), the
signature verifies with the issuer's key, the validity period covers `when`, no
critical extension we do not understand. For every issuer below the anchor: it is a
CA (basicConstraints cA), its keyUsage (if present) allows keyCertSign, and its
pathLenConstraint is respected. Trust anchors are trusted as configured (their
own signature is not checked) but must be within their validity period.

Not supported, and rejected when critical: name constraints, policy constraints.
RSA and SLH-DSA signatures are not supported (SLH-DSA is in wvds.ossl, but not accepted in paths yet).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from wvds import ossl
from wvds.est_service import asn1
from wvds.est_service.errors import ValidationError
from wvds.est_service.x509 import Cert, PublicKey

MAX_DEPTH = 8
# A hostile server can send CA certificates that all issue each other (same name, same key): the search
# below would try every ordering. It stops after this many signature checks, considers at most MAX_POOL
# distinct certificates, never puts a key on a path twice, and keeps at most MAX_REASONS reasons.
MAX_SIGNATURE_CHECKS = 64
MAX_POOL = 32
MAX_REASONS = 16
UNDERSTOOD_EXTENSIONS = {
    "2.5.29.19", "2.5.29.15", "2.5.29.37", "2.5.29.17", "2.5.29.14", "2.5.29.35", "2.5.29.32", "2.5.29.31",
    "1.3.6.1.5.5.7.1.1", "2.5.29.18",
}


def verify_signature(signed_der: bytes, algorithm, signature: bytes, key: PublicKey) -> bool:
    """Verify `signature` (algorithm = asn1crypto AlgorithmIdentifier) over `signed_der` with `key`.

    Returns False for a bad signature; raises ValidationError for an algorithm we do
    not support or a mismatch between algorithm and key type.
    """
    oid = algorithm["algorithm"].dotted
    params_present = algorithm.contents != algorithm["algorithm"].dump()
    if oid in asn1.ML_DSA_OIDS:
        if params_present:
            raise ValidationError(f"{asn1.ML_DSA_OIDS[oid]} signature with parameters (RFC 9881: absent)")
        if key.algorithm != asn1.ML_DSA_OIDS[oid]:
            raise ValidationError(f"{asn1.ML_DSA_OIDS[oid]} signature but the issuer key is {key.description}")
        with ossl.key_from_public(key.algorithm, key.raw) as pk:
            return ossl.mldsa_verify(pk, signed_der, signature, b"")
    if oid in asn1.ECDSA_SIG_OIDS:
        if not key.algorithm.startswith("EC-"):
            raise ValidationError(f"ECDSA signature but the issuer key is {key.description}")
        with ossl.key_from_public(key.algorithm, key.raw) as pk:
            return ossl.ecdsa_verify(pk, signed_der, signature, asn1.ECDSA_SIG_OIDS[oid])
    raise ValidationError(f"unsupported signature algorithm {algorithm['algorithm'].native}")


def cert_signed_by(cert: Cert, issuer: Cert) -> bool:
    if not issuer.public_key.algorithm:
        return False
    try:
        return verify_signature(cert.tbs.dump(), cert.asn1["signature_algorithm"],
                                cert.asn1["signature_value"].native, issuer.public_key)
    except (ValidationError, ossl.OsslError):
        return False


def _could_issue(issuer: Cert, cert: Cert) -> bool:
    if issuer.subject != cert.issuer:
        return False
    aki, ski = cert.authority_key_id, issuer.subject_key_id
    return aki is None or ski is None or aki == ski


@dataclass
class Path:
    certs: list[Cert]  # leaf first, anchor last

    @property
    def anchor(self) -> Cert:
        return self.certs[-1]

    @property
    def intermediates(self) -> list[Cert]:
        return self.certs[1:-1]


def validate(leaf: Cert, pool: list[Cert], anchors: list[Cert], when: dt.datetime, skew_s: float = 0,
             leaf_must_be_ca: bool = False) -> Path:
    """The first valid path from `leaf` through certificates of `pool` to an anchor; ValidationError if none."""
    if not anchors:
        raise ValidationError("no trust anchor configured")
    reasons: list[str] = []
    distinct = list(dict.fromkeys(pool))  # (a Cert is equal to, and hashes as, its DER)
    if len(distinct) > MAX_POOL:
        raise ValidationError(f"{len(distinct)} CA certificates offered for one path (at most {MAX_POOL})")
    found = _extend([leaf], distinct, anchors, when, skew_s, _Reasons(reasons))
    if found is None:
        why = "; ".join(dict.fromkeys(reasons)) or "no issuer found"
        raise ValidationError(f"{leaf.subject_text!r} does not chain to a trust anchor: {why}")
    if leaf_must_be_ca and not leaf.is_ca:
        raise ValidationError(f"{leaf.subject_text!r} is not a CA certificate")
    return Path(found)


def _check_cert(cert: Cert, when: dt.datetime, skew_s: float, reasons: list[str]) -> bool:
    if not cert.valid_at(when, skew_s):
        reasons.append(f"{cert.subject_text!r} is not valid at {when:%Y-%m-%dT%H:%M:%SZ} "
                       f"({cert.not_before:%Y-%m-%dT%H:%M:%SZ} .. {cert.not_after:%Y-%m-%dT%H:%M:%SZ})")
        return False
    unknown = cert.critical_extensions - UNDERSTOOD_EXTENSIONS
    if unknown:
        reasons.append(f"{cert.subject_text!r} has critical extensions we do not process: {sorted(unknown)}")
        return False
    return True


def _check_issuer(issuer: Cert, below: int, reasons: list[str]) -> bool:
    """`below`: number of non-self-issued intermediates between this issuer and the leaf."""
    if not issuer.is_ca:
        reasons.append(f"{issuer.subject_text!r} is not a CA (basicConstraints)")
        return False
    ku = issuer.key_usage
    if ku is not None and "key_cert_sign" not in ku:
        reasons.append(f"{issuer.subject_text!r} keyUsage lacks keyCertSign")
        return False
    if issuer.path_len is not None and below > issuer.path_len:
        reasons.append(f"{issuer.subject_text!r} pathLenConstraint {issuer.path_len} exceeded")
        return False
    return True


class _Reasons:
    """Why paths failed (into `out`, at most MAX_REASONS kept), and the search's budget of signature checks."""

    def __init__(self, out: list[str]):
        self.out, self.checks = out, 0

    def append(self, reason: str) -> None:
        if len(self.out) < MAX_REASONS:
            self.out.append(reason)

    def __bool__(self) -> bool:
        return bool(self.out)

    def signed_by(self, cert: Cert, issuer: Cert) -> bool:
        self.checks += 1
        if self.checks > MAX_SIGNATURE_CHECKS:
            raise ValidationError(f"{cert.subject_text!r}: no path within {MAX_SIGNATURE_CHECKS} signature checks "
                                  "(the CA certificates offered issue each other in circles)")
        return cert_signed_by(cert, issuer)


def _extend(path: list[Cert], pool: list[Cert], anchors: list[Cert], when, skew_s, reasons: _Reasons
            ) -> list[Cert] | None:
    cert = path[-1]
    if not _check_cert(cert, when, skew_s, reasons):
        return None
    if cert in anchors:
        return path
    below = sum(1 for c in path[1:] if not c.self_issued)
    for anchor in anchors:
        if not _could_issue(anchor, cert) or not anchor.valid_at(when, skew_s):
            continue
        if not _check_issuer(anchor, below, reasons):
            continue
        if reasons.signed_by(cert, anchor):
            return path + [anchor]
        reasons.append(f"signature of {cert.subject_text!r} does not verify with anchor {anchor.subject_text!r}")
    if len(path) >= MAX_DEPTH:
        reasons.append("path too long")
        return None
    keys_on_path = {c.public_key.spki_der for c in path[1:]}
    for issuer in pool:
        if issuer in path or not _could_issue(issuer, cert) or issuer.public_key.spki_der in keys_on_path:
            continue
        if not _check_issuer(issuer, below, reasons):
            continue
        if not reasons.signed_by(cert, issuer):
            reasons.append(f"signature of {cert.subject_text!r} does not verify with {issuer.subject_text!r}")
            continue
        found = _extend(path + [issuer], pool, anchors, when, skew_s, reasons)
        if found is not None:
            return found
    if not reasons:
        reasons.append(f"no issuer {cert.asn1.issuer.human_friendly!r} among the known CA certificates")
    return None
