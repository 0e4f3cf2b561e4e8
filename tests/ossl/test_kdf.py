"""HKDF-SHA256 against RFC 5869's vector and pyca's HKDF."""
import os
import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import wvds.ossl as ossl
from support.fips_process import in_fips_process


@in_fips_process
def test_rfc5869_test_case_1():
    okm = ossl.hkdf_sha256(bytes.fromhex("0b" * 22), bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42,
                           salt=bytes.fromhex("000102030405060708090a0b0c"))
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c"
                         "5db02d56ecc4c5bf34007208d5b887185865")


@in_fips_process
@pytest.mark.parametrize("length", [1, 32, 64, 255 * 32])
@pytest.mark.parametrize("salt", [b"", b"salt", random.Random(80).randbytes(80)])
def test_matches_pyca(length, salt):
    secret, info = os.urandom(32), b"WVDS test info"
    expected = HKDF(hashes.SHA256(), length, salt or None, info).derive(secret)
    assert ossl.hkdf_sha256(secret, info, length, salt) == expected


@in_fips_process
@pytest.mark.parametrize("kwargs", [dict(secret=b"s" * 13), dict(length=0), dict(length=255 * 32 + 1),
                                    dict(info=None)], ids=["short-secret", "zero", "too-long", "info-none"])
def test_refuses(kwargs):
    args = dict(secret=b"s" * 32, info=b"", length=32) | kwargs
    with pytest.raises(ossl.InvalidInputError):
        ossl.hkdf_sha256(**args)
