"""Unit level: the version-1 key file codec (pure Python), PBKDF2 and the software KEK (in the FIPS worker)."""
from __future__ import annotations

import os

import pytest

from support import fips_process
from support.fips_process import in_fips_process

from wvds.keystore import fileformat as ff
from wvds.keystore.base import KeyRecord
from wvds.protocol.constants import Algorithm, KeyFormat

RECORD = KeyRecord(0x0A0B0C0D, Algorithm.ML_KEM_768, 0x30, 1000, "ünïcode label", 1_800_000_000, KeyFormat.SEED,
                   bytes(64), 0, False)
STORE_ID = bytes(range(16))


def fake_seal(aad: bytes, pt: bytes) -> bytes:  # stands in for the KEK: the codec is tested on its own here
    return b"N" * 12 + pt + aad[-16:]


def fake_open(aad: bytes, sealed: bytes) -> bytes:
    if sealed[-16:] != aad[-16:]:
        raise ValueError("tag")
    return sealed[12:-16]


def test_key_file_round_trip_and_layout():
    blob = ff.encode_key(RECORD, STORE_ID, fake_seal)
    assert blob[:8] == b"WVDSKEY\0" and blob[8:12] == b"\x01\x00\x00\x00"
    assert ff.decode_key(blob, STORE_ID, fake_open, RECORD.key_id) == RECORD
    assert ff.key_file_name(RECORD.key_id) == "0a0b0c0d.key" and ff.key_id_from_name("0a0b0c0d.key") == 0x0A0B0C0D
    assert ff.key_id_from_name("0a0b0c0d.key.tmp") is None and ff.key_id_from_name("xyz.key") is None


@pytest.mark.parametrize("mutate,message", [
    (lambda b: b[:10], "truncated"),
    (lambda b: b"XVDSKEY\0" + b[8:], "bad magic"),
    (lambda b: b[:8] + b"\x02" + b[9:], "format version 2"),
    (lambda b: b[:12] + b"\xff\xff\x00\x00" + b[16:], "malformed header"),
    (lambda b: b.replace(b'"usage":48', b'"usage":"x"'), "malformed metadata"),
    (lambda b: b.replace(b'"algorithm":33', b'"algorithm":99'), "malformed metadata"),
], ids=["short", "magic", "version", "meta-length", "usage-type", "algorithm"])
def test_malformed_files_are_refused(mutate, message):
    blob = bytes(mutate(ff.encode_key(RECORD, STORE_ID, fake_seal)))
    with pytest.raises(ff.FormatError, match=message):
        ff.decode_key(blob, STORE_ID, fake_open, RECORD.key_id)


def test_header_round_trip_and_version_check():
    header = ff.new_header(STORE_ID, 1, {"source": "secret_file"})
    doc = ff.parse_header(ff.encode_header(header, fake_seal))
    assert doc["store_id"] == STORE_ID.hex() and doc["kek"] == {"source": "secret_file"}
    with pytest.raises(ff.FormatError, match="version 7 is not supported"):
        ff.parse_header(ff.encode_header({**header, "version": 7}, fake_seal))


@pytest.fixture(scope="module", autouse=True)
def fips_worker(fips_env):
    fips_process.configure(fips_env["OPENSSL_CONF"], fips_env)
    yield
    fips_process.shutdown()


@in_fips_process
@pytest.mark.parametrize("iterations,length", [(1000, 32), (10_000, 14), (2048, 64)])
def test_pbkdf2_matches_pyca(iterations, length):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    import wvds.ossl as ossl
    password, salt = b"correct horse battery staple", os.urandom(16)
    expected = PBKDF2HMAC(hashes.SHA256(), length, salt, iterations).derive(password)
    assert ossl.pbkdf2_sha256(password, salt, iterations, length) == expected


@in_fips_process
@pytest.mark.parametrize("kwargs", [dict(salt=b"s" * 15), dict(iterations=999), dict(password=b""),
                                    dict(length=13)], ids=["short-salt", "few-iterations", "empty", "short-output"])
def test_pbkdf2_refuses_what_sp800_132_forbids(kwargs):
    import wvds.ossl as ossl
    args = dict(password=b"pw", salt=b"s" * 16, iterations=1000, length=32) | kwargs
    with pytest.raises(ossl.InvalidInputError):
        ossl.pbkdf2_sha256(**args)


@in_fips_process
def test_software_kek_seals_with_fresh_nonces_and_detects_tampering():
    from wvds.keystore.kek import KekAuthError, from_secret
    kek = from_secret(os.urandom(32), STORE_ID, "test")
    a, b = kek.seal(b"aad", b"key material"), kek.seal(b"aad", b"key material")
    assert a[:12] != b[:12] and b"key material" not in a
    assert kek.open(b"aad", a) == b"key material"
    for bad_aad, bad in [(b"aaX", a), (b"aad", a[:-1] + bytes([a[-1] ^ 1])), (b"aad", a[:20])]:
        with pytest.raises(KekAuthError):
            kek.open(bad_aad, bad)
    other = from_secret(os.urandom(32), STORE_ID, "test")
    with pytest.raises(KekAuthError):
        other.open(b"aad", a)
    kek.close()
