"""EST flows against the test server: enroll, re-enroll, rekey, labels, auth, trust, TLS, csrattrs."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from support.est import assert_valid_pair, raw_public_key

ALGS = {"ML-DSA-65": ("2.16.840.1.101.3.4.3.18", "MLDSA65PublicKey"),
        "ECDSA-P256": ("1.2.840.10045.4.3.2", "ECPublicKey")}


@pytest.mark.parametrize("alg", ALGS)
def test_enroll_reenroll_rekey(make_client, est_server, alg):
    sig_oid, key_type = ALGS[alg]
    c = make_client(alg)
    c.once()
    cert = assert_valid_pair(c)
    enroll = est_server.requests("simpleenroll")
    assert len(enroll) == 1 and enroll[0]["basic_user"] == "est"
    assert enroll[0]["csr_sig_oid"] == sig_oid and key_type in enroll[0]["csr_key"]
    assert enroll[0]["tls"] == "TLSv1.3" and enroll[0]["group"] == "X25519MLKEM768"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-0001"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw-0001.local"]
    first_key = c.pair()[2]["key_id"]

    # renewal: same key, subject and SAN taken from the current certificate
    est_server.control()
    c.config["certificates"][0]["subject"] = [["CN", "changed-in-config"]]  # must not matter for re-enrollment
    c.write_config()
    c.once("--force")
    renewed = assert_valid_pair(c)
    reenroll = est_server.requests("simplereenroll")
    assert len(reenroll) == 1 and not est_server.requests("simpleenroll")
    assert renewed.serial_number != cert.serial_number
    assert renewed.subject == cert.subject
    assert renewed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == san
    assert raw_public_key(renewed) == raw_public_key(cert) and c.pair()[2]["key_id"] == first_key
    assert c.generation() == 2

    # rekey: a new key; the superseded key stays until the generation holding it is pruned
    c.config["certificates"][0]["rekey"] = True
    c.write_config()
    c.once("--force")
    rekeyed = assert_valid_pair(c)
    assert raw_public_key(rekeyed) != raw_public_key(cert)
    c.once("--force")  # gen 4: gen 2 (first key) is pruned now, so its key goes
    assert_valid_pair(c)
    from wvds.client import Client, ServiceStatusError
    with Client(c.crypto.socket) as cl:
        with pytest.raises(ServiceStatusError):
            cl.export_public(first_key)
    status = c.status()
    assert status["state"] == "valid" and status["failures"] == 0 and status["last_error"] is None
    assert status["key_algorithm"] == ("ML-DSA-65" if alg == "ML-DSA-65" else "EC-P-256")
    text = c.run("status")
    assert text.returncode == 0 and "device  [valid]" in text.stdout and "not_after" in text.stdout


def test_label_port_and_lenient_encoding(make_client, est_server):
    est_server.control(whitespace=True)  # base64 with CRLF + spaces, Content-Transfer-Encoding header
    c = make_client(server={"label": "gateways"})
    c.once()
    assert_valid_pair(c)
    paths = {r["path"] for r in est_server.requests()}
    assert paths == {f"/.well-known/est/gateways/{op}" for op in ("cacerts", "csrattrs", "simpleenroll")}


def test_tls_client_certificate_bootstrap(make_client, est_server):
    """First enrollment authenticated by a bootstrap certificate (TLS client auth), no Basic credentials."""
    est_server.control(require_client_cert=["simpleenroll"])
    c = make_client(server={"auth": {"bootstrap": {"client_cert": est_server.info["bootstrap_client_cert"],
                                                   "client_key": est_server.info["bootstrap_client_key"]}}})
    c.once()
    assert_valid_pair(c)
    r = est_server.requests("simpleenroll")[0]
    assert r["client_cert"] and "bootstrap-device-0001" in r["client_cert"] and r["basic_user"] is None


def test_bootstrap_by_fingerprint(make_client, est_server):
    c = make_client(server={"trust_anchor": None, "bootstrap_ca_fingerprint": est_server.info["root_sha256"]})
    c.once()
    assert_valid_pair(c)
    reqs = est_server.requests()
    # the unauthenticated bootstrap fetch carries no credentials; everything after it is authenticated
    assert reqs[0]["op"] == "cacerts" and "basic_user" not in reqs[0]
    anchors = x509.load_pem_x509_certificates((c.dir / "state" / "servers" / "test" / "anchors.pem").read_bytes())
    assert anchors[0].fingerprint(hashes.SHA256()).hex() == est_server.info["root_sha256"]


def test_bootstrap_wrong_fingerprint_sends_nothing(make_client, est_server):
    c = make_client(server={"trust_anchor": None, "bootstrap_ca_fingerprint": "ab" * 32})
    c.once(expect=1)
    assert [r["op"] for r in est_server.requests()] == ["cacerts"]
    assert c.generation() is None
    assert "fingerprint" in c.status()["last_error"]


def test_cacerts_from_wrong_ca_rejected(make_client, est_server):
    est_server.control(wrong_ca="cacerts")
    c = make_client()
    c.once(expect=1)
    assert not est_server.requests("simpleenroll")
    assert "chains to the trust anchor" in c.status()["last_error"]


def test_root_ca_rollover(make_client, est_server):
    c = make_client()
    c.once()
    est_server.control(rollover=True)  # issues from the new root; /cacerts carries NewWithOld etc.
    c.once("--force")
    new_root = x509.load_pem_x509_certificate(Path(est_server.dir / "pki" / "new_root.pem").read_bytes())
    assert_valid_pair(c, roots=[new_root])
    anchors = x509.load_pem_x509_certificates((c.dir / "state" / "servers" / "test" / "anchors.pem").read_bytes())
    assert new_root in anchors


def test_tls12_only_by_config(make_client, make_est_server):
    old = make_est_server("--tls-max", "1.2", "--tls-key-alg", "EC-P-256")
    c = make_client(est=old, name="tls13")  # default: TLS 1.3 only
    c.once(expect=1)
    assert "TLS" in c.status()["last_error"] or "SSL" in c.status()["last_error"]
    c12 = make_client(est=old, name="tls12", server={"tls": {"min_version": "1.2"}})
    c12.once()
    assert_valid_pair(c12)
    assert {r["tls"] for r in old.requests() if "tls" in r and r.get("status") == 200} == {"TLSv1.2"}


def test_secp256r1mlkem768(make_client, make_est_server):
    srv = make_est_server("--groups", "SecP256r1MLKEM768")
    c = make_client(est=srv, name="p256", server={"tls": {"groups": ["SecP256r1MLKEM768"]}})
    c.once()
    assert {r["group"] for r in srv.requests() if r.get("op")} == {"SecP256r1MLKEM768"}
    # X25519 alone is not offered by the FIPS provider: refused before any connection
    c.config["servers"]["test"]["tls"] = {"groups": ["X25519"]}
    c.write_config()
    c.once("--force", expect=1)
    assert "X25519" in c.status()["last_error"]


def _csrattrs(items: list) -> str:
    from asn1crypto import core
    import base64
    return base64.b64encode(core.Sequence(contents=b"".join(i.dump() for i in items)).dump()).decode()


def test_csrattrs_template(make_client, est_server):
    """RFC 9908 template: key type EC P-256, subject CN (ours) + O dictated, keyUsage without value."""
    from asn1crypto import core, x509 as ax
    from wvds.est_service import asn1
    subject = asn1.RDNSequenceTemplate([
        asn1.RelativeDistinguishedNameTemplate([asn1.SingleAttributeTemplate({"type": "2.5.4.3"})]),
        asn1.RelativeDistinguishedNameTemplate([asn1.SingleAttributeTemplate(
            {"type": "2.5.4.10", "value": core.Any.load(ax.DirectoryString(name="utf8_string",
                                                                             value="Server Org").dump())})]),
    ])
    ext_template = asn1.ExtensionTemplates([asn1.ExtensionTemplate({"extn_id": "2.5.29.15", "critical": True})])
    template = asn1.CertificationRequestInfoTemplate({
        "version": 0, "subject": subject,
        "subject_pk_info": {"algorithm": {"algorithm": asn1.EC_PUBLIC_KEY,
                                          "parameters": core.Any.load(core.ObjectIdentifier("1.2.840.10045.3.1.7")
                                                                      .dump())}},
        "attributes": [asn1.AnyAttribute({"type": asn1.EXT_REQ_TEMPLATE,
                                          "values": [core.Any.load(ext_template.dump())]})],
    })
    attr = asn1.AttrOrOID(name="attribute", value=asn1.AnyAttribute(
        {"type": asn1.CRI_TEMPLATE, "values": [core.Any.load(template.dump())]}))
    legacy = asn1.AttrOrOID(name="oid", value=core.ObjectIdentifier("2.16.840.1.101.3.4.3.19"))  # ignored
    est_server.control(csrattrs={"der_b64": _csrattrs([legacy, attr])})
    c = make_client("ML-DSA-65")
    c.once()
    cert = assert_valid_pair(c)
    r = est_server.requests("simpleenroll")[0]
    assert r["csr_key"] == "ECPublicKey"  # the template's key type wins over the config
    assert "2.5.29.15" in r["csr_extensions"] and "2.5.29.17" in r["csr_extensions"]
    assert cert.subject.rfc4514_string() == "O=Server Org,CN=gw-0001"
    assert c.pair()[2]["key_algorithm"] == "EC-P-256"


def test_csrattrs_legacy_extension_request(make_client, est_server):
    from asn1crypto import core, x509 as ax
    from wvds.est_service import asn1
    exts = ax.Extensions([ax.Extension({"extn_id": "extended_key_usage", "critical": False,
                                        "extn_value": ["client_auth"]})])
    attr = asn1.AttrOrOID(name="attribute", value=asn1.AnyAttribute(
        {"type": asn1.EXTENSION_REQUEST, "values": [core.Any.load(exts.dump())]}))
    unknown = asn1.AttrOrOID(name="oid", value=core.ObjectIdentifier("1.3.6.1.4.1.99999.1"))
    est_server.control(csrattrs={"der_b64": _csrattrs([unknown, attr])})
    c = make_client("ECDSA-P256")
    c.once()
    assert_valid_pair(c)
    assert "2.5.29.37" in est_server.requests("simpleenroll")[0]["csr_extensions"]


@pytest.fixture(scope="session")
def ec_ca_server(make_est_server):
    return make_est_server("--ca-alg", "EC-P-384")


@pytest.mark.parametrize("alg", ["ML-DSA-44", "ML-DSA-87", "ECDSA-P384"])
def test_other_key_algorithms_with_an_ecdsa_ca(make_client, ec_ca_server, alg):
    """The remaining key types, against a CA that signs with ECDSA P-384 (ecdsa-with-SHA384 paths)."""
    c = make_client(alg, est=ec_ca_server, name=alg)
    c.once()
    cert = assert_valid_pair(c)
    assert c.pair()[2]["key_algorithm"] == {"ECDSA-P384": "EC-P-384"}.get(alg, alg)
    assert cert.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.3"
