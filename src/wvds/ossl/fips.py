"""Bringing up OpenSSL in FIPS mode: `load()` and the `FipsInfo` it reports.

After `load()` succeeds, every algorithm this package uses is fetched from the
default library context with the default property query ``fips=yes``; a
non-approved algorithm (MD5, say) cannot be fetched at all, whichever other
providers happen to be active.

Two ways to give the configuration (the openssl.cnf that includes the
machine's fipsmodule.cnf and activates the fips and base providers):

* ``load(openssl_conf=..., modules_dir=...)`` loads it explicitly into the default
  library context. Use this in processes that also import pyca/cryptography:
  its bundled OpenSSL reads ``$OPENSSL_CONF`` too, tries to use *our* FIPS
  configuration and fails.
* ``load()`` with ``$OPENSSL_CONF`` / ``$OPENSSL_MODULES`` set: libcrypto reads the
  configuration when it initializes.

Either way nothing non-approved can be fetched through the default query. Only
the environment way guarantees that fips and base are the *only* active
providers: if anything used libcrypto before an explicit load() (Python's
hashlib does at import), libcrypto had no configuration then and activated its
fallback "default" provider, which stays active (unreachable under fips=yes,
but listed in `FipsInfo.providers`).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from wvds.ossl import _lib
from wvds.ossl._params import Params
from wvds.ossl.errors import OsslError

__all__ = ["FipsInfo", "load", "info"]


@dataclass(frozen=True)
class FipsInfo:
    openssl_version: str  # OpenSSL_version(OPENSSL_VERSION), e.g. "OpenSSL 3.6.3 9 Jun 2026"
    fips_name: str  # the FIPS provider's "name" parameter
    fips_version: str  # its "version", e.g. "3.6.3"
    fips_build_info: str  # its "buildinfo"
    self_test_passed: bool  # OSSL_PROVIDER_self_test() re-ran the known-answer tests and passed
    fips_default: bool  # EVP_default_properties_is_fips_enabled(NULL)
    libcrypto_path: str = ""  # the file actually mapped (resolved from a symbol's address)
    providers: tuple[str, ...] = ()  # every provider active in the default library context


_lock = threading.Lock()
_info: FipsInfo | None = None
_loaded_with: tuple[str | None, str | None, str | None] | None = None
_fips_provider: int | None = None  # our reference to the FIPS provider, held for the process lifetime


def load(openssl_conf: str | os.PathLike | None = None, modules_dir: str | os.PathLike | None = None, *,
         libcrypto: str | os.PathLike | None = None) -> FipsInfo:
    """Load libcrypto and activate the FIPS provider as the only source of algorithms. Idempotent.

    libcrypto: explicit path of libcrypto.so.3 (default: $WVDS_LIBCRYPTO, else the soname).
    A second call returns the first call's FipsInfo; it raises if it names a
    different configuration (a process has exactly one).
    """
    global _info, _loaded_with, _fips_provider
    openssl_conf, modules_dir, libcrypto = (None if a is None else os.fspath(a)
                                            for a in (openssl_conf, modules_dir, libcrypto))
    args = (openssl_conf, modules_dir, libcrypto)
    with _lock:
        if _info is not None:
            if any(a is not None for a in args) and args != _loaded_with:
                raise OsslError(f"wvds.ossl already loaded with {_loaded_with}; cannot reload with {args}")
            return _info
        lib, path = _lib.open_libcrypto(libcrypto)
        _lib.drain_errors(lib)  # whatever earlier users of this libcrypto left behind
        if modules_dir is not None:
            _lib.check(lib.OSSL_PROVIDER_set_default_search_path(None, modules_dir.encode()),
                       f"set provider search path {modules_dir}")
        if openssl_conf is not None:
            _lib.check(lib.OSSL_LIB_CTX_load_config(None, openssl_conf.encode()), f"load config {openssl_conf}")
        else:
            _lib.check(lib.OPENSSL_init_crypto(_lib.OPENSSL_INIT_LOAD_CONFIG, None),
                       "load config from $OPENSSL_CONF")
        # Our own reference to the FIPS provider. If the configuration activated it, this returns it;
        # if activation failed, OSSL_LIB_CTX_load_config still returned 1 with an empty error queue,
        # and this second attempt is what puts the reason (self-test failure, no module) on the queue.
        prov = lib.OSSL_PROVIDER_load(None, b"fips")
        if not prov:
            raise OsslError(f"the FIPS provider cannot be activated (configuration {openssl_conf or '$OPENSSL_CONF'}"
                            f", modules {modules_dir or '$OPENSSL_MODULES or the built-in path'}); the "
                            "configuration must include this machine's fipsmodule.cnf (openssl fipsinstall) "
                            "and activate 'fips'", _lib.drain_errors(lib))
        if lib.OSSL_PROVIDER_self_test(prov) != 1:
            raise _lib.error("FIPS provider self-test failed")
        if not lib.OSSL_PROVIDER_available(None, b"base"):
            # encoders (SubjectPublicKeyInfo DER) and the DRBG seed source live in "base"
            _lib.check_ptr(lib.OSSL_PROVIDER_load(None, b"base"), "load base provider")
        _lib.check(lib.EVP_default_properties_enable_fips(None, 1), "set default properties fips=yes")
        fips_default = lib.EVP_default_properties_is_fips_enabled(None) == 1
        if not fips_default:
            raise OsslError("default properties are not fips=yes after EVP_default_properties_enable_fips")
        name, version, build, status = _provider_params(lib, prov)
        if status != 1:
            raise OsslError(f"FIPS provider reports status {status} (not running)")
        _fips_provider = prov
        _info = FipsInfo(
            openssl_version=lib.OpenSSL_version(_lib.OPENSSL_VERSION).decode(),
            fips_name=name, fips_version=version, fips_build_info=build,
            self_test_passed=True, fips_default=fips_default,
            libcrypto_path=path, providers=active_providers(lib))
        _loaded_with = args
        _lib.mark_ready()
        return _info


def info() -> FipsInfo:
    """The FipsInfo of the successful load() (raises before it)."""
    _lib.ready()
    return _info


def _provider_params(lib, prov) -> tuple[str, str, str, int]:
    p = Params()
    name, version, build = p.out_utf8_ptr(b"name"), p.out_utf8_ptr(b"version"), p.out_utf8_ptr(b"buildinfo")
    status = p.out_uint(b"status")
    _lib.check(lib.OSSL_PROVIDER_get_params(prov, p.ref), "FIPS provider parameters")
    text = [(v.value or b"").decode(errors="replace") for v in (name, version, build)]
    return text[0], text[1], text[2], status.value


def active_providers(lib=None) -> tuple[str, ...]:
    """Names of the providers active in the default library context, sorted."""
    lib = lib or _lib.ready()
    names: list[str] = []

    def collect(prov, _arg):
        names.append(lib.OSSL_PROVIDER_get0_name(prov).decode())
        return 1

    _lib.check(lib.OSSL_PROVIDER_do_all(None, _lib.PROVIDER_CB(collect), None), "list providers")
    return tuple(sorted(names))


def algorithm_available(kind: str, name: str) -> bool:
    """Whether `name` can be fetched under the default query (fips=yes): kind "digest" or "cipher"."""
    lib = _lib.ready()
    fetch, free = {"digest": (lib.EVP_MD_fetch, lib.EVP_MD_free),
                   "cipher": (lib.EVP_CIPHER_fetch, lib.EVP_CIPHER_free)}[kind]
    obj = fetch(None, name.encode(), None)
    if obj:
        free(obj)
        return True
    _lib.drain_errors(lib)
    return False


def rand_provider() -> tuple[str, str]:
    """(provider, algorithm) of the public DRBG RAND_bytes draws from, e.g. ("fips", "CTR-DRBG")."""
    lib = _lib.ready()
    rctx = _lib.check_ptr(lib.RAND_get0_public(None), "public DRBG")
    rand = _lib.check_ptr(lib.EVP_RAND_CTX_get0_rand(rctx), "DRBG algorithm")
    prov = _lib.check_ptr(lib.EVP_RAND_get0_provider(rand), "DRBG provider")
    return lib.OSSL_PROVIDER_get0_name(prov).decode(), lib.EVP_RAND_get0_name(rand).decode()

