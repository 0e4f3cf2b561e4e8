"""load() and FIPS mode: the provider, its self-test, the default query fips=yes, one libcrypto."""
import os

import pytest

import wvds.ossl as ossl
from support.fips_process import LIBDIR, MODULES, in_fips_process
from wvds.ossl import fips


@in_fips_process
def test_fips_info_reports_the_3_6_3_fips_provider():
    info = ossl.load()
    assert info.openssl_version.startswith("OpenSSL 3.6.3 "), info
    assert info.fips_name == "OpenSSL FIPS Provider", info
    assert info.fips_version == "3.6.3", info
    assert info.fips_build_info.startswith("3.6.3"), info
    assert info.self_test_passed and info.fips_default, info
    assert "fips" in info.providers, info
    assert info.libcrypto_path == str((LIBDIR / "libcrypto.so.3").resolve()), info


@in_fips_process
def test_load_is_idempotent_and_refuses_another_configuration():
    assert ossl.load() is ossl.load() is fips.info()
    with pytest.raises(ossl.OsslError, match="already loaded"):
        ossl.load(openssl_conf="/elsewhere/openssl.cnf")


@in_fips_process
def test_exactly_one_libcrypto_is_mapped_and_it_is_ours():
    import hashlib
    import ssl

    import cryptography.hazmat.primitives.asymmetric.mldsa  # noqa: F401  (pyca links its OpenSSL statically)
    hashlib.sha256(b"x").digest()
    assert ssl.OPENSSL_VERSION.startswith("OpenSSL 3.6.3 "), ssl.OPENSSL_VERSION
    ours = str((LIBDIR / "libcrypto.so.3").resolve())
    assert ossl._lib.mapped_libcrypto() == [ours]
    with open("/proc/self/maps") as maps:
        fips_modules = {os.path.realpath(line.split()[-1]) for line in maps if line.rstrip().endswith("fips.so")}
    assert fips_modules == {str((MODULES / "fips.so").resolve())}


@in_fips_process
@pytest.mark.parametrize("kind,name", [("digest", "MD5"), ("digest", "SHA1-MD5"), ("digest", "RIPEMD160"),
                                       ("cipher", "ChaCha20-Poly1305"), ("cipher", "CAMELLIA-256-CBC"),
                                       ("cipher", "SM4-CBC"), ("cipher", "BF-CBC")])
def test_non_fips_algorithms_cannot_be_fetched(kind, name):
    assert not fips.algorithm_available(kind, name)


@in_fips_process
@pytest.mark.parametrize("kind,name", [("digest", "SHA2-256"), ("digest", "SHA3-256"), ("cipher", "AES-256-GCM")])
def test_fips_algorithms_can_be_fetched(kind, name):
    assert fips.algorithm_available(kind, name)


@in_fips_process
def test_algorithms_come_from_the_fips_provider():
    lib = ossl._lib.ready()
    cipher = ossl._lib.fetch("EVP_CIPHER_fetch", "AES-256-GCM")
    assert lib.OSSL_PROVIDER_get0_name(lib.EVP_CIPHER_get0_provider(cipher)) == b"fips"
    assert fips.rand_provider() == ("fips", "CTR-DRBG")


@in_fips_process
@pytest.mark.parametrize("n", [0, 1, 32, 4096])
def test_random_bytes(n):
    a, b = ossl.random_bytes(n), ossl.random_bytes(n)
    assert len(a) == len(b) == n
    assert n < 16 or a != b


@in_fips_process
@pytest.mark.parametrize("n", [-1, 1.5, "3", True, 1 << 31])
def test_random_bytes_refuses_bad_sizes(n):
    with pytest.raises(ossl.InvalidInputError):
        ossl.random_bytes(n)
