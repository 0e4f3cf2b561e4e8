"""Asymmetric keys held by the FIPS provider: generation, import, export, SubjectPublicKeyInfo.

Algorithm names (the strings `PKey.algorithm` holds and every function takes):
``ML-DSA-44/65/87`` and ``ML-KEM-512/768/1024`` are OpenSSL's own key-type names;
``EC-P-256`` and ``EC-P-384`` are ours, for OpenSSL key type "EC" with group
"P-256" / "P-384" (ECDSA keys).

Raw encodings, all read and written through OSSL_PARAMs (EVP_PKEY_fromdata /
EVP_PKEY_get_octet_string_param), never through DER:

============  ==========================  =====================================
form          ML-DSA / ML-KEM             EC
============  ==========================  =====================================
public        "pub": FIPS 204/203 encoding "pub": uncompressed point 04||X||Y
seed          "seed": 32-byte xi / 64-byte d||z   (none)
expanded      "priv": FIPS 204/203 private key     (none)
raw           (none)                      "priv": scalar, big-endian, fixed size
============  ==========================  =====================================

Every imported key is checked by the provider: public keys with
EVP_PKEY_public_check (ML-KEM: the modulus check of FIPS 203 7.2; EC: point on
the curve), private keys with EVP_PKEY_pairwise_check.
"""
from __future__ import annotations

import ctypes
import threading
from ctypes import byref, c_size_t, c_void_p
from dataclasses import dataclass

from wvds.algorithms import REGISTRY
from wvds.ossl import _lib
from wvds.ossl._checks import exact_len
from wvds.ossl._params import Params
from wvds.ossl.errors import InvalidInputError, OsslError

__all__ = ["ALGORITHMS", "AlgorithmSpec", "PKey", "spec", "generate_key", "key_from_seed", "key_from_private",
           "key_from_public", "public_key_der"]


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str  # our name, PKey.algorithm
    family: str  # "ML-DSA", "SLH-DSA", "ML-KEM" or "EC"
    keytype: str  # OpenSSL key type for EVP_PKEY_CTX_new_from_name
    public_size: int
    private_size: int  # expanded private key (ML-*) or scalar (EC)
    seed_size: int = 0  # 0: no seed form
    group: str = ""  # EC only
    signature_size: int = 0  # ML-DSA, SLH-DSA: exact; EC: maximum DER size
    ciphertext_size: int = 0  # ML-KEM


# Derived from the algorithm registry (wvds.algorithms), where every size is defined once.
ALGORITHMS: dict[str, AlgorithmSpec] = {
    i.ossl_name: AlgorithmSpec(i.ossl_name, i.family, i.keytype, i.public_size, i.private_size, i.seed_size,
                               i.group, i.signature_size, i.ciphertext_size)
    for i in REGISTRY.values() if i.ossl_name}


def spec(algorithm: str) -> AlgorithmSpec:
    try:
        return ALGORITHMS[algorithm]
    except (KeyError, TypeError):
        raise InvalidInputError(f"unknown algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}") from None


class PKey:
    """An EVP_PKEY owned by Python. Thread-safe: operations may run on many threads at once.

    Each operation takes its own reference (EVP_PKEY_up_ref) for its duration, so
    close() — or garbage collection — while another thread signs cannot free the
    key under it; the last reference frees it.
    """

    __slots__ = ("_ptr", "_spec", "_has_private", "_lock", "__weakref__")

    def __init__(self, ptr: int, algorithm_spec: AlgorithmSpec, has_private: bool):
        self._ptr = ptr
        self._spec = algorithm_spec
        self._has_private = has_private
        self._lock = threading.Lock()

    @property
    def algorithm(self) -> str:
        return self._spec.name

    @property
    def spec(self) -> AlgorithmSpec:
        return self._spec

    @property
    def has_private(self) -> bool:
        return self._has_private

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def acquire(self) -> int:
        """A new reference to the EVP_PKEY; the caller must EVP_PKEY_free it (see `borrow`)."""
        with self._lock:
            if self._ptr is None:
                raise OsslError(f"{self.algorithm} key is closed")
            _lib.check(_lib.ready().EVP_PKEY_up_ref(self._ptr), "EVP_PKEY_up_ref")
            return self._ptr

    def public_bytes(self) -> bytes:
        """Raw public key: FIPS 204/203 encoding, or the uncompressed EC point."""
        return _get_octets(self, b"pub", self._spec.public_size, "public key")

    def private_bytes(self, form: str) -> bytes:
        """Private key material: form "seed" or "expanded" (ML-DSA/ML-KEM), "raw" (EC scalar)."""
        s = self._spec
        if not self._has_private:
            raise InvalidInputError(f"{s.name} key has no private part")
        if s.family == "EC":
            if form != "raw":
                raise InvalidInputError(f"EC keys export only the 'raw' form, not {form!r}")
            return _get_scalar(self)
        if form == "seed":
            return _get_octets(self, b"seed", s.seed_size, "seed (key was imported without one?)")
        if form == "expanded":
            return _get_octets(self, b"priv", s.private_size, "expanded private key")
        raise InvalidInputError(f"{s.name} keys export 'seed' or 'expanded', not {form!r}")

    def close(self) -> None:
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr:
            _lib.ready().EVP_PKEY_free(ptr)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing sensible left to do
            pass

    def __enter__(self) -> "PKey":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._ptr is None else ("private" if self._has_private else "public")
        return f"<PKey {self.algorithm} {state}>"


class borrow:
    """``with borrow(key) as pkey:`` — a referenced EVP_PKEY* for one operation."""

    __slots__ = ("_ptr",)

    def __init__(self, key: PKey):
        if not isinstance(key, PKey):
            raise InvalidInputError(f"expected a PKey, not {type(key).__name__}")
        self._ptr = key.acquire()

    def __enter__(self) -> int:
        return self._ptr

    def __exit__(self, *exc) -> None:
        _lib.ready().EVP_PKEY_free(self._ptr)


def require(key: PKey, family: str, private: bool, operation: str) -> AlgorithmSpec:
    """Check the key fits the operation before any C call."""
    if not isinstance(key, PKey):
        raise InvalidInputError(f"{operation}: expected a PKey, not {type(key).__name__}")
    if key.spec.family != family:
        raise InvalidInputError(f"{operation} needs an {family} key, not {key.algorithm}")
    if private and not key.has_private:
        raise InvalidInputError(f"{operation} needs a private key; this {key.algorithm} key is public only")
    return key.spec


# --- creating keys --------------------------------------------------------------

def generate_key(algorithm: str) -> PKey:
    """A fresh key pair from the FIPS DRBG (FIPS keygen includes its pairwise test)."""
    s = spec(algorithm)
    p = Params()
    if s.group:
        p.utf8(b"group", s.group)
    return _generate(s, p, f"generate {s.name} key")


def key_from_seed(algorithm: str, seed: bytes) -> PKey:
    """Deterministic ML-DSA (32-byte xi) / ML-KEM (64-byte d||z) key generation from a seed."""
    s = spec(algorithm)
    if not s.seed_size:
        raise InvalidInputError(f"{s.name} keys have no seed form")
    seed = exact_len(seed, f"{s.name} seed", s.seed_size)
    return _generate(s, Params().octets(b"seed", seed), f"{s.name} key from seed")


def key_from_private(algorithm: str, material: bytes) -> PKey:
    """Import an expanded ML-DSA/ML-KEM private key, or an EC private scalar (big-endian, curve size)."""
    s = spec(algorithm)
    material = exact_len(material, f"{s.name} private key", s.private_size)
    with Params() as p:
        if s.family == "EC":
            p.utf8(b"group", s.group).octets(b"pub", _ec_public_point(s, material)).unsigned_be(b"priv", material)
        else:
            p.octets(b"priv", material)
        key = _fromdata(s, p, _lib.EVP_PKEY_KEYPAIR, has_private=True)
    _check_key(key, "EVP_PKEY_pairwise_check", f"{s.name} private key is inconsistent")
    return key


def key_from_public(algorithm: str, public: bytes) -> PKey:
    """Import and validate a raw public key (EC: uncompressed point only)."""
    s = spec(algorithm)
    public = exact_len(public, f"{s.name} public key", s.public_size)
    p = Params()
    if s.family == "EC":
        if public[0] != 0x04:
            raise InvalidInputError(f"{s.name} public key must be an uncompressed point (04||X||Y)")
        p.utf8(b"group", s.group)
    p.octets(b"pub", public)
    key = _fromdata(s, p, _lib.EVP_PKEY_PUBLIC_KEY, has_private=False)
    _check_key(key, "EVP_PKEY_public_check", f"{s.name} public key is invalid")
    return key


def public_key_der(key: PKey) -> bytes:
    """SubjectPublicKeyInfo DER (i2d_PUBKEY; the encoder comes from the base provider)."""
    lib = _lib.ready()
    with borrow(key) as pkey:
        n = lib.i2d_PUBKEY(pkey, None)
        if n <= 0:
            raise _lib.error(f"encode {key.algorithm} SubjectPublicKeyInfo")
        buf = ctypes.create_string_buffer(n)
        cursor = c_void_p(ctypes.addressof(buf))  # i2d advances the pointer it is given
        if lib.i2d_PUBKEY(pkey, byref(cursor)) != n:
            raise _lib.error(f"encode {key.algorithm} SubjectPublicKeyInfo")
        return buf.raw


# --- helpers --------------------------------------------------------------------

def _generate(s: AlgorithmSpec, p: Params, operation: str) -> PKey:
    lib = _lib.ready()
    ctx = _lib.check_ptr(lib.EVP_PKEY_CTX_new_from_name(None, s.keytype.encode(), None), operation)
    out = c_void_p()
    try:
        _lib.check(lib.EVP_PKEY_keygen_init(ctx), operation)
        _lib.check(lib.EVP_PKEY_CTX_set_params(ctx, p.ref), operation)
        _lib.check(lib.EVP_PKEY_generate(ctx, byref(out)), operation)
        return PKey(out.value, s, has_private=True)
    finally:
        p.wipe()
        lib.EVP_PKEY_CTX_free(ctx)


def _fromdata(s: AlgorithmSpec, p: Params, selection: int, has_private: bool) -> PKey:
    lib = _lib.ready()
    operation = f"import {s.name} {'private' if has_private else 'public'} key"
    ctx = _lib.check_ptr(lib.EVP_PKEY_CTX_new_from_name(None, s.keytype.encode(), None), operation)
    out = c_void_p()
    try:
        _lib.check(lib.EVP_PKEY_fromdata_init(ctx), operation)
        _lib.check(lib.EVP_PKEY_fromdata(ctx, byref(out), selection, p.ref), operation)
        return PKey(out.value, s, has_private)
    finally:
        lib.EVP_PKEY_CTX_free(ctx)


def _check_key(key: PKey, check: str, operation: str) -> None:
    lib = _lib.ready()
    try:
        with borrow(key) as pkey:
            ctx = _lib.check_ptr(lib.EVP_PKEY_CTX_new_from_pkey(None, pkey, None), operation)
            try:
                _lib.check(getattr(lib, check)(ctx), operation)
            finally:
                lib.EVP_PKEY_CTX_free(ctx)
    except BaseException:
        key.close()
        raise


def _get_octets(key: PKey, name: bytes, size: int, what: str) -> bytes:
    lib = _lib.ready()
    buf = ctypes.create_string_buffer(size)
    n = c_size_t()
    try:
        with borrow(key) as pkey:
            _lib.check(lib.EVP_PKEY_get_octet_string_param(pkey, name, buf, size, byref(n)),
                       f"{key.algorithm}: get {what}")
        if n.value != size:
            raise OsslError(f"{key.algorithm}: {what} is {n.value} bytes, expected {size}")
        return buf.raw
    finally:
        ctypes.memset(buf, 0, size)


def _get_scalar(key: PKey) -> bytes:
    lib = _lib.ready()
    size = key.spec.private_size
    bn = c_void_p()
    buf = ctypes.create_string_buffer(size)
    try:
        with borrow(key) as pkey:
            _lib.check(lib.EVP_PKEY_get_bn_param(pkey, b"priv", byref(bn)), f"{key.algorithm}: get private scalar")
        _lib.check(lib.BN_bn2binpad(bn, buf, size), f"{key.algorithm}: encode private scalar")
        return buf.raw
    finally:
        ctypes.memset(buf, 0, size)
        lib.BN_clear_free(bn)


def _ec_public_point(s: AlgorithmSpec, scalar: bytes) -> bytes:
    """Q = d*G for an imported EC scalar, as an uncompressed point.

    The FIPS provider's EC import does not derive a missing public key, so we
    compute it with libcrypto's constant-time ladder (EC_POINT_mul) and import
    both; key_from_private then has the provider itself confirm Q = d*G
    (EVP_PKEY_pairwise_check) and that 1 <= d < n.
    """
    lib = _lib.ready()
    operation = f"derive {s.name} public key"
    group = _lib.check_ptr(lib.EC_GROUP_new_by_curve_name_ex(None, None, _lib.NID[s.group]), operation)
    point = bn = None
    try:
        bn = _lib.check_ptr(lib.BN_secure_new(), operation)
        _lib.check_ptr(lib.BN_bin2bn(scalar, len(scalar), bn), operation)
        lib.BN_set_flags(bn, _lib.BN_FLG_CONSTTIME)
        point = _lib.check_ptr(lib.EC_POINT_new(group), operation)
        _lib.check(lib.EC_POINT_mul(group, point, bn, None, None, None), operation)
        out = ctypes.create_string_buffer(s.public_size)
        n = lib.EC_POINT_point2oct(group, point, _lib.POINT_CONVERSION_UNCOMPRESSED, out, s.public_size, None)
        if n != s.public_size:  # 1 byte: the point at infinity (scalar 0 or n)
            raise InvalidInputError(f"{s.name} private scalar is out of range")
        return out.raw
    finally:
        lib.EC_POINT_free(point)
        lib.BN_clear_free(bn)
        lib.EC_GROUP_free(group)

