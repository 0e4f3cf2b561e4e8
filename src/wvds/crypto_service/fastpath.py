"""The C side of the service's hot path: rate limiter, AES invocation counters, the fast path.

`src/c/service/wvds_srv.h` (generated from wvds.native.spec) says what the C fast path answers: RANDOM, and
only requests that would succeed (AES, verify, ML-KEM returning the secret) for keys the Python path has already
granted to the client's session (after its ownership and policy checks); everything else comes back here
unchanged. The token bucket and the AES counters live in C because both paths use
them; these classes are their Python handles.
"""
from __future__ import annotations

import ctypes
import weakref
from ctypes import c_int

from wvds import ossl
from wvds.native import bind, spec
from wvds.protocol.constants import HashAlg

_CODES = {c.name: c.value for c in spec.SERVICE_CODES}
COUNT_OK, COUNT_LIMIT, COUNT_RESERVE = _CODES["COUNT_OK"], _CODES["COUNT_LIMIT"], _CODES["COUNT_RESERVE"]
REPLAY_FRESH, REPLAY_SEEN, REPLAY_OLD = _CODES["REPLAY_FRESH"], _CODES["REPLAY_SEEN"], _CODES["REPLAY_OLD"]
NONCE_SIZE, TAG_SIZE = 12, 16
_enabled = False


def lib() -> ctypes.CDLL:
    """The service library with the prototypes of wvds.native.spec."""
    return bind.load("service")


def enable() -> None:
    """Hand the C fast path our libcrypto (after wvds.ossl.load()); without it every request takes the
    Python path. Once per process."""
    global _enabled
    if not _enabled:
        if lib().wvds_srv_fast_setup(ctypes.byref(bind.STRUCTS["wvds_srv_ossl"](**ossl.fast_path_entry_points()))) != 0:
            raise RuntimeError("the C fast path refused the libcrypto entry points")
        _enabled = True


class TokenBucket:
    """A client identity's rate limit: `rate` tokens/s refill `burst`; a dry bucket refuses for `cooldown` s.
    rate 0 = off. Thread-safe: every connection of the identity shares one (CryptoService.bucket_for)."""

    def __init__(self, rate: float, burst: int, cooldown: float):
        self.rate = float(rate)
        self.ptr = lib().wvds_srv_bucket_new(self.rate, int(burst), float(cooldown))
        if not self.ptr:
            raise MemoryError("token bucket")
        weakref.finalize(self, lib().wvds_srv_bucket_free, self.ptr)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self) -> bool:
        return bool(lib().wvds_srv_bucket_allow(self.ptr))


class AesCounter:
    """An AES-256 key's invocation counter (the only one) and, for a software key, its bytes for the fast path."""

    def __init__(self, key: bytes | None, uses: int, reserved: int):
        self.ptr = lib().wvds_srv_aes_key_new(key, uses, reserved)
        if not self.ptr:
            raise MemoryError("AES key counter")
        self.software = key is not None
        self.window_bytes = 0  # size of its replay window, once protect()ed
        weakref.finalize(self, lib().wvds_srv_aes_key_release, self.ptr)  # the C object stays valid as long as this

    def count(self, limit: int) -> int:
        """COUNT_OK (counted), COUNT_LIMIT (limit reached) or COUNT_RESERVE (persist a reservation first)."""
        return lib().wvds_srv_aes_key_count(self.ptr, limit)

    def reserve(self, reserved: int) -> None:
        lib().wvds_srv_aes_key_reserve(self.ptr, reserved)

    @property
    def uses(self) -> int:
        return lib().wvds_srv_aes_key_uses(self.ptr)

    def retire(self) -> None:
        """The key is deleted: the fast path stops using it and its bytes are wiped in C."""
        lib().wvds_srv_aes_key_retire(self.ptr)

    # -- replay protection (src/c/service/replay.c, docs/replay.md) --------------------------
    def protect(self, path: str | None, window: int, streams: int, sync: bool) -> None:
        """Give the key its replay window (file `path`, None: memory only); from now on encryptions need
        a started stream. OSError if it cannot be opened (with the errno of the failed call) or is not one
        (errno 0)."""
        err, os_error = ctypes.create_string_buffer(160), c_int(0)
        ptr = lib().wvds_srv_replay_open(path.encode() if path else None, window, streams, int(sync),
                                         ctypes.byref(os_error), err, len(err))
        if not ptr:
            raise OSError(os_error.value, f"replay window {path or '(memory)'}: {err.value.decode(errors='replace')}")
        lib().wvds_srv_aes_key_protect(self.ptr, ptr)
        self.window_bytes = lib().wvds_srv_replay_bytes(ptr)

    def start_stream(self, epoch: int, start: int) -> None:
        if lib().wvds_srv_aes_key_stream(self.ptr, epoch, start) != 0:
            raise RuntimeError("the nonce stream could not be started")

    def next_nonce(self) -> bytes:
        """The stream's next nonce, for a key held by an HSM (the service hands it to the token)."""
        out = ctypes.create_string_buffer(NONCE_SIZE)
        if lib().wvds_srv_aes_key_next_nonce(self.ptr, out) != 0:
            raise RuntimeError("no nonce stream started")
        return out.raw

    def seal(self, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes, bytes]:
        """Encrypt with a software key in C (the stream's generator for a protected key): (nonce, ct, tag)."""
        nonce, tag = ctypes.create_string_buffer(NONCE_SIZE), ctypes.create_string_buffer(TAG_SIZE)
        ct = ctypes.create_string_buffer(len(plaintext) or 1)
        if lib().wvds_srv_aes_key_seal(self.ptr, aad, len(aad), plaintext, len(plaintext), nonce, ct, tag) != 0:
            raise ossl.OsslError("AES-GCM encryption failed")
        return nonce.raw, ct.raw[:len(plaintext)], tag.raw

    def replay_check(self, nonce: bytes) -> int:
        """REPLAY_FRESH (now recorded), REPLAY_SEEN or REPLAY_OLD; only for an authenticated nonce."""
        return lib().wvds_srv_aes_key_replay_check(self.ptr, nonce)

    def replay_floor(self, epoch: int) -> None:
        lib().wvds_srv_aes_key_replay_floor(self.ptr, epoch)


class FastKey:
    """A stored key's OpenSSL key in C, for the fast path's signatures, verify, encaps and decaps
    (src/c/service/pkey_fast.c). `private_ops`: it may sign and decapsulate there (a private key of the FIPS
    provider)."""

    KINDS = {"ML-DSA": _CODES["PKEY_MLDSA"], "SLH-DSA": _CODES["PKEY_SLHDSA"], "EC": _CODES["PKEY_ECDSA"],
             "ML-KEM": _CODES["PKEY_MLKEM"]}

    def __init__(self, key: ossl.PKey, private_ops: bool, default_digest: str = ""):
        if not _enabled:  # (wvds_srv_pkey_new could not even free the reference)
            raise RuntimeError("the C fast path is not enabled")
        s = key.spec
        pure = s.family in ("ML-DSA", "SLH-DSA")
        signature = ossl.signature_algorithm(key) if pure else None
        size = s.ciphertext_size if s.family == "ML-KEM" else s.signature_size
        digest = int(HashAlg[default_digest]) if default_digest else 0
        self.private_ops = private_ops
        self.ptr = lib().wvds_srv_pkey_new(key.acquire(), signature, self.KINDS[s.family], size, digest,
                                           int(private_ops))  # the reference acquired is the C object's
        if not self.ptr:
            raise RuntimeError(f"the fast path refused a {s.name} key")
        weakref.finalize(self, lib().wvds_srv_pkey_release, self.ptr)

    @property
    def uses(self) -> int:
        """Signatures made with it in C."""
        return lib().wvds_srv_pkey_uses(self.ptr)

    def retire(self) -> None:
        """The key is deleted: waits for C operations on it, then frees the C side's OpenSSL key."""
        lib().wvds_srv_pkey_retire(self.ptr)


class FastSession:
    """One client's C state: fast-path grants, its bucket, and which of its slots the service holds."""

    def __init__(self, bucket: TokenBucket, gcm_limit: int):
        self.bucket = bucket  # the C session points at it: keep it alive as long
        self.ptr = lib().wvds_srv_fast_new(bucket.ptr, gcm_limit)
        if not self.ptr:
            raise MemoryError("fast path session")
        self._free = weakref.finalize(self, lib().wvds_srv_fast_free, self.ptr)

    def grant(self, key_id: int, counter: AesCounter, usage: int) -> None:
        if counter.software and _enabled:
            lib().wvds_srv_fast_grant(self.ptr, key_id, counter.ptr, usage)

    def grant_pkey(self, key_id: int, ops: FastKey, usage: int) -> None:
        if _enabled:
            lib().wvds_srv_fast_grant_pkey(self.ptr, key_id, ops.ptr, usage)

    def charged(self, slot: int) -> bool:
        """The C fast path took this returned request's rate-limit token already (once per request)."""
        return bool(lib().wvds_srv_fast_charged(self.ptr, slot))

    def release(self, slot: int) -> None:
        """The service is done with `slot` (call just before completing it): it may be taken again."""
        lib().wvds_srv_fast_release(self.ptr, slot)

    def stop(self) -> None:
        lib().wvds_srv_fast_stop(self.ptr)

    def close(self) -> None:
        """Only once the serving thread has returned from serve() for good."""
        self._free()
