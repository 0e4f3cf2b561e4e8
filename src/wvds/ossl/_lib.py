"""libcrypto through ctypes: finding it, declaring every prototype, draining the error queue.

This is the only file that knows C signatures. Every function the package calls is
declared in PROTOTYPES with its argtypes and restype, so no pointer is ever
truncated to a C int and every call is type-checked by ctypes. Functions are
resolved eagerly when the library is opened: a libcrypto that lacks one fails at
load time, not in the middle of a request.

Which libcrypto: an explicit path (argument, else $WVDS_LIBCRYPTO), else the
soname ``libcrypto.so.3`` through the normal dynamic-linker search. By soname,
the dynamic linker returns the copy that is already mapped (for instance Python's
own ``_hashlib``'s), which is what we want: one process, one libcrypto. Run the
process with ``LD_LIBRARY_PATH=<openssl>/lib`` (or ship it with an RPATH) so that
copy is ours. By path, a *second* copy may be mapped beside Python's; `open_libcrypto`
refuses that (see `mapped_libcrypto`).

ctypes releases the GIL around each foreign call, so operations on different
threads really run in parallel inside OpenSSL.
"""
from __future__ import annotations

import ctypes
import os
import threading
from ctypes import POINTER, c_char_p, c_int, c_size_t, c_uint, c_ulong, c_uint64, c_void_p

from wvds.ossl.errors import OsslError

MIN_VERSION = 0x30600000  # OpenSSL 3.6.0: ML-DSA/ML-KEM in the FIPS provider, EVP_PKEY_sign_message_init
SONAME = "libcrypto.so.3"

# constants from the OpenSSL 3 headers (stable ABI values)
OPENSSL_VERSION = 0
OPENSSL_INIT_LOAD_CONFIG = 0x40
ERR_TXT_STRING = 0x02
EVP_CTRL_AEAD_GET_TAG = 0x10
EVP_CTRL_AEAD_SET_TAG = 0x11
EVP_PKEY_PUBLIC_KEY = 0x86  # OSSL_KEYMGMT_SELECT_ALL_PARAMETERS | SELECT_PUBLIC_KEY
EVP_PKEY_KEYPAIR = 0x87  # EVP_PKEY_PUBLIC_KEY | SELECT_PRIVATE_KEY
POINT_CONVERSION_UNCOMPRESSED = 4
NID = {"P-256": 415, "P-384": 715}  # NID_X9_62_prime256v1, NID_secp384r1
BN_FLG_CONSTTIME = 0x04

P = c_void_p  # any OpenSSL object pointer; also writable output buffers
B = c_char_p  # const char * / const unsigned char * input (bytes passed without copying)
I, S, U = c_int, c_size_t, c_uint
PS, PI, PP = POINTER(c_size_t), POINTER(c_int), POINTER(c_void_p)
PROVIDER_CB = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)

# name: (restype, argtypes)
PROTOTYPES: dict[str, tuple] = {
    # version, init, configuration, providers
    "OpenSSL_version_num": (c_ulong, []),
    "OpenSSL_version": (c_char_p, [I]),
    "OPENSSL_init_crypto": (I, [c_uint64, P]),
    "OSSL_LIB_CTX_load_config": (I, [P, B]),
    "OSSL_PROVIDER_set_default_search_path": (I, [P, B]),
    "OSSL_PROVIDER_available": (I, [P, B]),
    "OSSL_PROVIDER_load": (P, [P, B]),
    "OSSL_PROVIDER_self_test": (I, [P]),
    "OSSL_PROVIDER_get_params": (I, [P, P]),
    "OSSL_PROVIDER_get0_name": (c_char_p, [P]),
    "OSSL_PROVIDER_do_all": (I, [P, PROVIDER_CB, P]),
    "EVP_default_properties_enable_fips": (I, [P, I]),
    "EVP_default_properties_is_fips_enabled": (I, [P]),
    # error queue
    "ERR_get_error_all": (c_ulong, [PP, PI, PP, PP, PI]),
    "ERR_error_string_n": (None, [c_ulong, P, S]),
    "ERR_clear_error": (None, []),
    # fetching (algorithm objects are cached, see `fetch`)
    "EVP_MD_fetch": (P, [P, B, B]),
    "EVP_MD_free": (None, [P]),
    "EVP_CIPHER_fetch": (P, [P, B, B]),
    "EVP_CIPHER_free": (None, [P]),
    "EVP_CIPHER_get0_provider": (P, [P]),
    "EVP_SIGNATURE_fetch": (P, [P, B, B]),
    "EVP_SIGNATURE_free": (None, [P]),
    "EVP_KDF_fetch": (P, [P, B, B]),
    "EVP_KDF_free": (None, [P]),
    # random
    "RAND_bytes_ex": (I, [P, P, S, U]),
    "RAND_get0_public": (P, [P]),
    "EVP_RAND_CTX_get0_rand": (P, [P]),
    "EVP_RAND_get0_provider": (P, [P]),
    "EVP_RAND_get0_name": (c_char_p, [P]),
    # symmetric ciphers
    "EVP_CIPHER_CTX_new": (P, []),
    "EVP_CIPHER_CTX_free": (None, [P]),
    "EVP_EncryptInit_ex2": (I, [P, P, B, B, P]),
    "EVP_DecryptInit_ex2": (I, [P, P, B, B, P]),
    "EVP_EncryptUpdate": (I, [P, P, PI, B, I]),
    "EVP_DecryptUpdate": (I, [P, P, PI, B, I]),
    "EVP_EncryptFinal_ex": (I, [P, P, PI]),
    "EVP_DecryptFinal_ex": (I, [P, P, PI]),
    "EVP_CIPHER_CTX_ctrl": (I, [P, I, I, P]),
    "EVP_CIPHER_CTX_get_params": (I, [P, P]),
    # KDF
    "EVP_KDF_CTX_new": (P, [P]),
    "EVP_KDF_CTX_free": (None, [P]),
    "EVP_KDF_derive": (I, [P, P, S, P]),
    # asymmetric keys
    "EVP_PKEY_CTX_new_from_name": (P, [P, B, B]),
    "EVP_PKEY_CTX_new_from_pkey": (P, [P, P, B]),
    "EVP_PKEY_CTX_free": (None, [P]),
    "EVP_PKEY_CTX_set_params": (I, [P, P]),
    "EVP_PKEY_keygen_init": (I, [P]),
    "EVP_PKEY_generate": (I, [P, PP]),
    "EVP_PKEY_fromdata_init": (I, [P]),
    "EVP_PKEY_fromdata": (I, [P, PP, I, P]),
    "EVP_PKEY_up_ref": (I, [P]),
    "EVP_PKEY_free": (None, [P]),
    "EVP_PKEY_get_size": (I, [P]),
    "EVP_PKEY_get_octet_string_param": (I, [P, B, P, S, PS]),
    "EVP_PKEY_get_bn_param": (I, [P, B, PP]),
    "EVP_PKEY_public_check": (I, [P]),
    "EVP_PKEY_pairwise_check": (I, [P]),
    "i2d_PUBKEY": (I, [P, PP]),
    # big numbers and EC points (only to derive an imported EC private key's public point)
    "BN_secure_new": (P, []),
    "BN_bin2bn": (P, [B, I, P]),
    "BN_set_flags": (None, [P, I]),
    "BN_bn2binpad": (I, [P, P, I]),
    "BN_clear_free": (None, [P]),
    "EC_GROUP_new_by_curve_name_ex": (P, [P, B, I]),
    "EC_GROUP_free": (None, [P]),
    "EC_POINT_new": (P, [P]),
    "EC_POINT_free": (None, [P]),
    "EC_POINT_mul": (I, [P, P, P, P, P, P]),
    "EC_POINT_point2oct": (S, [P, P, I, P, S, P]),
    # signatures
    "EVP_PKEY_sign_init_ex": (I, [P, P]),
    "EVP_PKEY_verify_init_ex": (I, [P, P]),
    "EVP_PKEY_sign_message_init": (I, [P, P, P]),
    "EVP_PKEY_verify_message_init": (I, [P, P, P]),
    "EVP_PKEY_sign": (I, [P, P, PS, B, S]),
    "EVP_PKEY_verify": (I, [P, B, S, B, S]),
    "EVP_MD_CTX_new": (P, []),
    "EVP_MD_CTX_free": (None, [P]),
    "EVP_DigestSignInit_ex": (I, [P, PP, B, P, B, P, P]),
    "EVP_DigestVerifyInit_ex": (I, [P, PP, B, P, B, P, P]),
    "EVP_DigestSign": (I, [P, P, PS, B, S]),
    "EVP_DigestVerify": (I, [P, B, S, B, S]),
    "EVP_Q_digest": (I, [P, B, B, B, S, P, PS]),
    # KEM
    "EVP_PKEY_encapsulate_init": (I, [P, P]),
    "EVP_PKEY_encapsulate": (I, [P, P, PS, P, PS]),
    "EVP_PKEY_decapsulate_init": (I, [P, P]),
    "EVP_PKEY_decapsulate": (I, [P, P, PS, B, S]),
}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_path: str | None = None
_ready = False


def open_libcrypto(path: str | None = None) -> tuple[ctypes.CDLL, str]:
    """Open libcrypto once, declare all prototypes, refuse versions below 3.6. Returns (lib, file)."""
    global _lib, _path
    with _lock:
        if _lib is not None:
            return _lib, _path
        wanted = path or os.environ.get("WVDS_LIBCRYPTO") or SONAME
        try:
            lib = ctypes.CDLL(wanted)
        except OSError as e:
            raise OsslError(f"cannot load libcrypto {wanted!r}", [str(e)]) from None
        # the version first: an older libcrypto lacks some of the symbols declared below
        lib.OpenSSL_version_num.restype = c_ulong
        lib.OpenSSL_version_num.argtypes = []
        lib.OpenSSL_version.restype = c_char_p
        lib.OpenSSL_version.argtypes = [c_int]
        actual = _mapping_of(ctypes.cast(lib.OpenSSL_version_num, c_void_p).value) or wanted
        if lib.OpenSSL_version_num() < MIN_VERSION:
            raise OsslError(f"{actual} is {lib.OpenSSL_version(OPENSSL_VERSION).decode()}; "
                            "wvds.ossl needs OpenSSL 3.6 or newer (set LD_LIBRARY_PATH or WVDS_LIBCRYPTO)")
        for name, (restype, argtypes) in PROTOTYPES.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                raise OsslError(f"{actual} lacks {name}") from None
            fn.restype, fn.argtypes = restype, argtypes
        copies = mapped_libcrypto()
        if len(copies) > 1:
            raise OsslError(f"{len(copies)} different libcrypto files are mapped into this process "
                            f"({', '.join(copies)}); start it with LD_LIBRARY_PATH={os.path.dirname(actual)} "
                            "so that Python and wvds.ossl share one")
        _lib, _path = lib, actual
        return lib, actual


def mark_ready() -> None:
    """Called by fips.load() once the FIPS provider is active and the default query is fips=yes."""
    global _ready
    _ready = True


def ready() -> ctypes.CDLL:
    """The library, for operations; only after a successful wvds.ossl.load()."""
    if not _ready:
        raise OsslError("FIPS provider not loaded: call wvds.ossl.load() first")
    return _lib


def library_path() -> str | None:
    return _path


def mapped_libcrypto() -> list[str]:
    """Real paths of every libcrypto shared object mapped into this process (Linux /proc/self/maps)."""
    files = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and os.path.basename(fields[5].strip()).startswith("libcrypto.so"):
                    files.add(os.path.realpath(fields[5].strip()))
    except OSError:
        return []
    return sorted(files)


def _mapping_of(address: int) -> str | None:
    """The file mapped at address (which shared object a resolved symbol lives in)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                if lo <= address < hi and len(fields) == 6:
                    return os.path.realpath(fields[5].strip())
    except OSError:
        pass
    return None


# --- the error queue ----------------------------------------------------------

def drain_errors(lib: ctypes.CDLL | None = None) -> list[str]:
    """Pop this thread's OpenSSL error queue (oldest first) as text; the queue is empty afterwards."""
    lib = lib or _lib
    if lib is None:
        return []
    out = []
    buf = ctypes.create_string_buffer(256)
    func, data, flags = c_void_p(), c_void_p(), c_int()
    while True:
        code = lib.ERR_get_error_all(None, None, ctypes.byref(func), ctypes.byref(data), ctypes.byref(flags))
        if code == 0:
            return out
        lib.ERR_error_string_n(code, buf, len(buf))
        text = buf.value.decode(errors="replace")  # error:<hex code>:<library>::<reason>
        if func.value and "::" in text:
            text = text.replace("::", f":{ctypes.string_at(func.value).decode(errors='replace')}:", 1)
        if flags.value & ERR_TXT_STRING and data.value:
            detail = ctypes.string_at(data.value).decode(errors="replace")
            if detail:
                text += f" ({detail})"
        out.append(text)


def error(operation: str, cls: type[OsslError] = OsslError) -> OsslError:
    """An exception for a failed call, carrying (and clearing) the error queue."""
    return cls(operation, drain_errors())


def check(ok: int, operation: str) -> None:
    """OpenSSL convention: 1 is success, 0 or negative is failure."""
    if ok <= 0:
        raise error(operation)


def check_ptr(ptr: int | None, operation: str) -> int:
    if not ptr:
        raise error(operation)
    return ptr


# --- fetched algorithm objects (cached for the process lifetime) --------------

_fetched: dict[tuple[str, str], int] = {}
_FREE = {"EVP_MD_fetch": "EVP_MD_free", "EVP_CIPHER_fetch": "EVP_CIPHER_free",
         "EVP_SIGNATURE_fetch": "EVP_SIGNATURE_free", "EVP_KDF_fetch": "EVP_KDF_free"}


def fetch(fetcher: str, name: str) -> int:
    """EVP_*_fetch(NULL, name, NULL) once: default library context, default query (fips=yes).

    Fetching costs a property-query lookup; the service fetches the same few
    algorithms millions of times, so each object is kept (they are immutable and
    reference counted, safe to share between threads).
    """
    key = (fetcher, name)
    obj = _fetched.get(key)
    if obj is None:
        lib = ready()
        obj = check_ptr(getattr(lib, fetcher)(None, name.encode(), None), f"fetch {name}")
        with _lock:
            if key in _fetched:
                getattr(lib, _FREE[fetcher])(obj)
            else:
                _fetched[key] = obj
            obj = _fetched[key]
    return obj
