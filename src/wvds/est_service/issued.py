"""What the CA made of our request: how the issued certificate differs from it, and whether it is fit.

RFC 7030 leaves the certificate's content to the CA, and real CAs rewrite subjects (keep only the CN,
reorder RDNs, add their own O), add or drop subjectAltName entries and set their own key usage. What
est_service insists on is elsewhere (enroll.py): the certificate binds *our* public key, chains to a
trust anchor and is valid now. Here: the differences, for the log and `status` (and for refusal when
a certificate is configured with `strict_subject`), and fitness: a certificate whose keyUsage forbids
digital signatures, or whose extendedKeyUsage forbids TLS client authentication where re-enrollment
needs it, is useless to the device and refused.
"""
from __future__ import annotations

from asn1crypto import x509 as ax509

from wvds.est_service.x509 import NAME_ATTRIBUTES, Cert

_SHORT = {long: short for short, long in NAME_ATTRIBUTES.items()}  # organization_name -> O, as in the config


def _rdns(name: ax509.Name) -> list[tuple[str, str]]:
    return [(_SHORT.get(atv["type"].native, atv["type"].dotted), str(atv["value"].native))
            for rdn in name.chosen for atv in rdn]


def requested_san(csr_info) -> set[str]:
    """The subjectAltName entries an asn1crypto CertificationRequestInfo asks for, as 'kind:value'."""
    out: set[str] = set()
    for attr in csr_info["attributes"]:
        if attr["type"].native != "extension_request":
            continue
        for extensions in attr["values"]:
            for ext in extensions:
                if ext["extn_id"].native == "subject_alt_name":
                    out |= {f"{n.name}:{n.native}" for n in ext["extn_value"].parsed}
    return out


def differences(csr_info, leaf: Cert) -> list[str]:
    """How the issued certificate's subject and subjectAltName differ from the request (empty: not at all)."""
    out = []
    asked, got = _rdns(csr_info["subject"]), _rdns(leaf.subject)
    if asked != got:
        dropped = [f"{k}={v}" for k, v in asked if (k, v) not in got]
        added = [f"{k}={v}" for k, v in got if (k, v) not in asked]
        if dropped:
            out.append("subject: dropped " + ", ".join(dropped))
        if added:
            out.append("subject: added " + ", ".join(added))
        if not dropped and not added:
            out.append("subject: attributes reordered")
    asked_san, got_san = requested_san(csr_info), set(leaf.san_text)
    if asked_san - got_san:
        out.append("subjectAltName: dropped " + ", ".join(sorted(asked_san - got_san)))
    if got_san - asked_san:
        out.append("subjectAltName: added " + ", ".join(sorted(got_san - asked_san)))
    return out


def unfit(leaf: Cert, client_auth: bool) -> str | None:
    """Why the certificate cannot serve the device, or None. client_auth: it must do TLS client auth."""
    if leaf.is_ca:  # a device key must not issue certificates, whatever the CSR attributes asked for
        return "it is a CA certificate (basicConstraints cA)"
    ku = leaf.key_usage
    if ku is not None and "key_cert_sign" in ku:
        return "its keyUsage allows signing certificates (keyCertSign)"
    if ku is not None and "digital_signature" not in ku:
        return f"its keyUsage ({', '.join(sorted(ku))}) does not allow digital signatures"
    eku = leaf.asn1.extended_key_usage_value
    if client_auth and eku is not None:
        purposes = set(eku.native)
        if not purposes & {"client_auth", "any_extended_key_usage"}:
            return (f"its extendedKeyUsage ({', '.join(sorted(purposes))}) does not allow TLS client "
                    "authentication, which re-enrollment with client_cert \"current\" needs")
    return None
