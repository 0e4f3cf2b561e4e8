"""Regression tests for the parser bugs the fuzz campaign found (docs/hardening.md, "Findings").

Each input used to escape its parser as a raw Python exception instead of the parser's own error:
a traceback at start-up instead of "FILE: field: problem", a key store that would not start
because of one damaged key file, an EST answer that aborted the enrollment attempt as an
"unexpected error" instead of a reported protocol error. The same inputs are replayed through the
harnesses from tests/fuzz/crashes/ by test_fuzz_short.py; these tests pin the exact error here.
"""
from __future__ import annotations

import json
import struct

import pytest

from fuzz.fuzzlib import CRASHES
from wvds.crypto_service import config as crypto_config
from wvds.crypto_service.errors import ConfigError as CryptoConfigError
from wvds.est_service import config as est_config
from wvds.est_service import csrattrs, pkcs7
from wvds.est_service.errors import ConfigError as EstConfigError
from wvds.est_service.errors import ProtocolError
from wvds.keystore import fileformat as ff
from wvds.keystore.kek import KekAuthError


def _crash(target: str, name: str) -> bytes:
    return (CRASHES / target / name).read_bytes()[1:]  # byte 0 selects the harness branch


def test_pkcs7_with_a_malformed_certificate_set_is_a_protocol_error():
    """asn1crypto parses the certificate SET lazily: iterating it raised ValueError outside the try."""
    with pytest.raises(ProtocolError, match="malformed PKCS#7"):
        pkcs7.certs_only(pkcs7.decode_body(_crash("est", "pkcs7-lazy-certificate-set"), "t"), "t")


def test_csrattrs_with_a_malformed_template_is_a_protocol_error():
    """The RFC 9908 template's SubjectPublicKeyInfo is parsed on first access, after the checked part."""
    with pytest.raises(ProtocolError, match="csrattrs"):
        csrattrs.parse(pkcs7.decode_body(_crash("est", "csrattrs-lazy-template-spki"), "t"))


@pytest.mark.parametrize("text", [b"[" * 5000, b'{"access":{"allow_uids":[' + b"7" * 5000 + b"]}}"],
                         ids=["deep-nesting", "int-over-4300-digits"])
@pytest.mark.parametrize("module,error", [(crypto_config, CryptoConfigError), (est_config, EstConfigError)],
                         ids=["crypto_service", "est_service"])
def test_config_json_that_python_cannot_parse_is_a_config_error(tmp_path, text, module, error):
    path = tmp_path / "config.json"
    path.write_bytes(text)
    with pytest.raises(error, match="invalid JSON"):
        module.load(str(path))


def test_crypto_config_refuses_a_signed_socket_mode():
    """int("-1", 8) is -1: the mode passed validation and failed at chmod time."""
    for mode in ("-1", "+660", "0_660", "", "0x1ff"):
        with pytest.raises(CryptoConfigError, match="socket.mode"):
            crypto_config.parse({"socket": {"mode": mode}, "access": {"allow_uids": [0]}})
    assert crypto_config.parse({"socket": {"mode": "0600"}, "access": {"allow_uids": [0]}}).socket_mode == 0o600


def test_paths_with_a_nul_byte_are_config_errors():
    """os.path.isabs() accepts them; bind()/open() then raise ValueError, which start-up did not expect."""
    with pytest.raises(CryptoConfigError, match="socket.path"):
        crypto_config.parse({"socket": {"path": "/run/a\0b"}, "access": {"allow_uids": [0]}})
    with pytest.raises(EstConfigError, match="state_dir"):
        est_config.parse({"state_dir": "/var/a\0b", "servers": {"s": {"url": "https://h",
                                                                      "bootstrap_ca_fingerprint": "ab" * 32}},
                          "certificates": [{"name": "c", "subject": {"CN": "x"}}]})


def test_est_config_with_an_unbalanced_ipv6_url_is_a_config_error(tmp_path):
    path = tmp_path / "est.json"
    path.write_bytes(_crash("config", "est-unbalanced-ipv6-url"))
    with pytest.raises(EstConfigError, match="url: invalid URL"):
        est_config.load(str(path))


def test_key_file_with_deeply_nested_metadata_is_a_format_error():
    """The store skips files that raise FormatError; a RecursionError stopped the whole start-up."""
    meta = b"[" * 5000
    blob = struct.pack("<8sHHI", ff.MAGIC, 1, 0, len(meta)) + meta + b"\0" * 28

    def never(aad, sealed):
        raise KekAuthError("not reached")

    with pytest.raises(ff.FormatError, match="malformed metadata"):
        ff.decode_key(blob, bytes(16), never, 1)
    with pytest.raises(ff.FormatError, match="not valid JSON"):
        ff.parse_header(b"[" * 5000)
    assert json.loads(_crash("keyfile", "header-deep-nesting")[:3] + b"]]]") == [[[]]]  # the file is what it says


def test_retry_after_with_a_date_beyond_datetime_is_ignored():
    """A 202 whose Retry-After is an HTTP-date with a 70-digit year: OverflowError escaped retry_after()."""
    import datetime as dt

    from wvds.est_service.http import retry_after
    head = _crash("est", "retry-after-date-year-overflow").split(b"\n")[1]
    value = head.split(b":", 1)[1].decode()
    assert retry_after(value, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)) is None


@pytest.mark.parametrize("name", ["certificate-asn1crypto-attributeerror", "certificate-empty-bit-string-indexerror"])
def test_certificates_that_trip_asn1crypto_are_protocol_errors(name):
    """asn1crypto raised AttributeError ('InstanceOf' object has no attribute 'native') and IndexError
    (an empty BIT STRING) while parsing these mutated certificates; Cert() let them through instead of
    calling them malformed certificates (it caught only ValueError/TypeError/KeyError)."""
    from wvds.est_service.x509 import Cert
    with pytest.raises(ProtocolError, match="malformed certificate"):
        Cert(_crash("est", name))


@pytest.mark.parametrize("name", ["oid-only-continuation-bytes", "ber-indefinite-nested-3000-deep",
                                  "certificate-too-few-tbs-fields", "pkcs7-content-without-children"])
def test_extract_certs_reports_malformed_input_as_input_error(name):
    """scripts/extract_certs.py promises InputError (one line, exit 1) for bad input; these raised
    IndexError (an OID of continuation bytes only, a TBSCertificate or SignedData with elements
    missing) and RecursionError (BER indefinite lengths nested 3 000 deep) instead."""
    import sys

    from fuzz.fuzzlib import ROOT
    sys.path.insert(0, str(ROOT / "scripts"))
    import extract_certs
    with pytest.raises(extract_certs.InputError):
        extract_certs.load(_crash("extract_certs", name))
