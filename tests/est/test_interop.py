"""est_service against behaviours of EST servers in the field (docs/est-interop.md has the matrix).

Each behaviour is an option of the test EST server (tests/support/est_server.py); each test
enrolls (or re-enrolls) through the real est_service, crypto_service and TLS stack.
"""
from __future__ import annotations

import pytest

from support.est import assert_valid_pair


def test_ca_keeps_only_the_cn(make_client, est_server):
    """A CA policy that drops O: accepted (RFC 7030 lets the CA decide), the difference logged and shown."""
    est_server.control(subject_policy="cn_only")
    c = make_client()
    c.once()
    cert = assert_valid_pair(c)
    assert cert.subject.rfc4514_string() == "CN=gw-0001"
    st = c.status()
    assert st["state"] == "valid" and st["differs_from_request"] == ["subject: dropped O=WvdS"], st
    assert "the CA changed the requested content" in (c.dir / "est.log").read_text()


@pytest.mark.parametrize("policy,expected", [
    ({"subject_policy": "reorder"}, ["subject: attributes reordered"]),
    ({"subject_policy": "add_o"}, ["subject: added O=CA Policy Inc"]),
    ({"san_policy": "drop"}, ["subjectAltName: dropped dns_name:gw-0001.local, ip_address:192.0.2.7"]),
    ({"san_policy": "add"}, ["subjectAltName: added dns_name:added-by-ca.example"]),
], ids=["reorder", "add-o", "san-drop", "san-add"])
def test_rewritten_content_is_accepted_and_reported(make_client, est_server, policy, expected):
    est_server.control(**policy)
    c = make_client("ECDSA-P256")
    c.once()
    assert_valid_pair(c)
    assert c.status()["differs_from_request"] == expected


def test_strict_subject_refuses_a_rewritten_subject(make_client, est_server):
    est_server.control(subject_policy="cn_only")
    c = make_client(certificate={"strict_subject": True})
    c.once(expect=1)
    st = c.status()
    assert st["state"] == "not enrolled"
    assert "differs from the request (subject: dropped O=WvdS) and strict_subject is set" in st["last_error"]
    assert c.state()["retire_keys"] == []  # the key made for it is deleted again


def test_a_certificate_unfit_for_signing_is_refused(make_client, est_server):
    est_server.control(key_usage=["key_encipherment"])
    c = make_client()
    c.once(expect=1)
    assert "keyUsage (key_encipherment) does not allow digital signatures" in c.status()["last_error"]


def test_server_auth_only_eku_is_refused_where_mtls_reenrollment_needs_client_auth(make_client, est_server,
                                                                                    wvds_openssl_cnf):
    c = make_client()
    c.once()
    c.use_current_certificate(wvds_openssl_cnf)
    est_server.control(eku="server_auth")
    c.once("--force", expect=1)
    assert "does not allow TLS client authentication" in c.status()["last_error"]
    assert c.generation() == 1  # the current pair stays


@pytest.mark.parametrize("alg", ["ML-DSA-65", "ECDSA-P256"])
def test_nul_terminated_bodies(make_client, est_server, alg):
    """A C server whose base64 bodies end in the string's NUL (counted in Content-Length): /cacerts,
    /csrattrs and the enrollment all decode."""
    est_server.control(nul_terminated=True, whitespace=True,
                       csrattrs={"der_b64": "MAA="})  # an empty CsrAttrs SEQUENCE
    c = make_client(alg)
    c.once()
    assert_valid_pair(c)
    assert [r["status"] for r in est_server.requests("csrattrs")] == [200]
    assert "not base64" not in (c.dir / "est.log").read_text()


@pytest.mark.parametrize("behaviour", [{"chunked": True}, {"extra_certs": True}, {"ber_lengths": True}],
                         ids=["chunked", "extra-certs", "ber-lengths"])
def test_framing_variants(make_client, est_server, behaviour):
    est_server.control(**behaviour)
    c = make_client()
    c.once()
    assert_valid_pair(c)


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_http_digest_authentication(make_client, est_server, algorithm):
    est_server.control(http_auth="digest", digest_algorithm=algorithm)
    c = make_client()
    c.config["servers"]["test"]["auth"]["allow_md5_digest"] = algorithm == "MD5"
    c.write_config()
    c.once()
    assert_valid_pair(c)
    assert [r["status"] for r in est_server.requests("simpleenroll")] == [401, 200]
    assert est_server.requests("simpleenroll")[-1]["authenticated_by"] == "digest"


def test_md5_digest_needs_an_explicit_opt_in(make_client, est_server):
    est_server.control(http_auth="digest", digest_algorithm="MD5")
    c = make_client()
    c.once(expect=1)
    err = c.status()["last_error"]
    assert "HTTP 401" in err and "only MD5 Digest" in err and "allow_md5_digest" in err, err


def test_401_says_what_the_server_asked_for(make_client, est_server):
    est_server.control(status={"simpleenroll": 401}, http_auth="digest", digest_algorithm="SHA-256")
    c = make_client()
    c.once(expect=1)
    assert 'the server asks for Digest (realm "est", SHA-256)' in c.status()["last_error"]


def test_http_auth_demanded_beside_the_client_certificate(make_client, est_server, wvds_openssl_cnf):
    """A server that wants HTTP credentials even with a valid TLS client certificate: re-enrollment
    with client_cert "current" alone gets a 401 that says so; with both it succeeds."""
    c = make_client()
    c.once()
    c.use_current_certificate(wvds_openssl_cnf)
    est_server.control(http_auth_with_cert=True)
    c.once("--force", expect=1)
    assert 'HTTP 401' in c.status()["last_error"] and 'Basic (realm "est")' in c.status()["last_error"]
    c.config["servers"]["test"]["auth"]["reenroll"].update(username="est", password_file=str(c.password_file))
    c.write_config()
    c.once("--force")
    assert c.generation() == 2
    last = est_server.requests("simplereenroll")[-1]
    assert last["status"] == 200 and last["client_cert"] and last["basic_user"] == "est"


def test_a_toolkit_without_ml_dsa_fails_with_its_own_message(make_client, est_server):
    est_server.control(refuse_mldsa="libest: unsupported public key algorithm in CSR")
    c = make_client("ML-DSA-65")
    c.once(expect=1)
    st = c.status()
    assert "HTTP 400: libest: unsupported public key algorithm in CSR" in st["last_error"], st
    assert st["state"] == "not enrolled" and c.state()["retire_keys"] == []  # the new key is deleted


def test_once_says_what_it_skipped(make_client, est_server):
    est_server.control(status={"simpleenroll": 500})
    c = make_client(certificate={"retry": {"initial_s": 3600, "max_s": 7200}})
    c.once(expect=1)
    est_server.control()
    r = c.once(expect=1)  # a retry is scheduled an hour ahead: nothing attempted, and it says so
    assert "device: skipped, the next attempt is due at" in r.stderr and "--force" in r.stderr, r.stderr
    assert "HTTP 500" in r.stderr
    c.once("--force")
    assert_valid_pair(c)

