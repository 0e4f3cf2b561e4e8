"""Typed Python client.

The transport (connection setup, slots, atomics, futex waits) is the C library
libl4re_crypto_service.so, called through ctypes, so Python and C clients share
one implementation of docs/transport.md. Payloads are encoded and decoded with
wvds.protocol, the single definition of the wire format.
"""
from __future__ import annotations

import ctypes
import json
import os
import threading
from typing import Any

from wvds.native import bind
from wvds.protocol.constants import (HEADER_SIZE, MAX_RESPONSE_PAYLOAD, Algorithm, HashAlg, KemFlags, KeyFormat,
                                     RequestType, Status)
from wvds.protocol import payloads as p

TRANSPORT_ERRORS = {0x100: "ERR_CONNECT", 0x101: "ERR_REFUSED", 0x102: "ERR_TIMEOUT", 0x103: "ERR_PROTOCOL",
                    0x104: "ERR_BUFFER_TOO_SMALL", 0x105: "ERR_ARGUMENT", 0x106: "ERR_DISCONNECTED",
                    0x107: "ERR_SYSTEM"}


class ServiceStatusError(Exception):
    """The service answered with a non-SUCCESS status."""

    def __init__(self, status: Status, request: RequestType):
        super().__init__(f"{request.name}: {status.name}")
        self.status, self.request = status, request


class TransportFailure(Exception):
    """The request did not get an answer (connect, refused, timeout, disconnected, ...)."""

    def __init__(self, code: int, what: str):
        super().__init__(f"{what}: {TRANSPORT_ERRORS.get(code, hex(code))}")
        self.code, self.name = code, TRANSPORT_ERRORS.get(code, hex(code))


_Options = bind.STRUCTS["wvds_options"]  # struct wvds_options of wvds_crypto.h
NO_SPIN = 0xFFFF_FFFF  # WVDS_NO_SPIN of wvds_crypto.h: sleep at once


def _load() -> ctypes.CDLL:
    """The OEM library with the prototypes of wvds.native.spec."""
    return bind.load("client")


class Client:
    """A connection to crypto_service. Thread-safe: concurrent calls use separate slots."""

    def __init__(self, socket_path: str = "/run/wvds/crypto.sock", timeout_ms: int = 10_000, slots: int = 0,
                 spin_us: int | None = None):
        """spin_us: how long to busy-wait for an answer before sleeping; None: 20 µs, or none with one CPU
        online (the service could not run meanwhile)."""
        self._lib = _load()
        self._conn = ctypes.c_void_p()
        if spin_us is None:
            spin_us = 20 if (os.cpu_count() or 1) > 1 else NO_SPIN
        opts = _Options(timeout_ms=timeout_ms, requested_slots=slots, spin_us=spin_us)
        rc = self._lib.wvds_connect_ex(socket_path.encode(), ctypes.byref(opts), ctypes.byref(self._conn))
        if rc != 0:
            raise TransportFailure(rc, f"connect to {socket_path}")
        self._local = threading.local()

    def close(self) -> None:
        if self._conn:
            self._lib.wvds_close(self._conn)
            self._conn = ctypes.c_void_p()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- raw -----------------------------------------------------------------
    def transact(self, rtype: RequestType, payload: bytes = b"") -> tuple[Status, bytes]:
        """Send one request; return (status, response payload). Raises TransportFailure only."""
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = ctypes.create_string_buffer(HEADER_SIZE + MAX_RESPONSE_PAYLOAD)
        n = ctypes.c_size_t(0)
        rc = self._lib.wvds_transact(self._conn, int(rtype), payload, len(payload), buf, len(buf), ctypes.byref(n))
        if rc >= 0x100:
            raise TransportFailure(rc, rtype.name)
        return Status(rc), buf.raw[:n.value]

    def call(self, rtype: RequestType, payload: bytes = b"") -> bytes:
        status, data = self.transact(rtype, payload)
        if status != Status.SUCCESS:
            raise ServiceStatusError(status, rtype)
        return data

    # -- operations ----------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return json.loads(self.call(RequestType.STATUS))

    def random(self, n: int) -> bytes:
        return self.call(RequestType.RANDOM, p.RandomRequest(n).encode())

    def generate_key(self, algorithm: Algorithm, usage: int = 0, label: str = "") -> p.KeyCreatedResponse:
        return p.KeyCreatedResponse.decode(
            self.call(RequestType.KEY_GENERATE, p.KeyGenerateRequest(algorithm, usage, label).encode()))

    def import_key(self, algorithm: Algorithm, fmt: KeyFormat, material: bytes, usage: int = 0,
                   label: str = "") -> p.KeyCreatedResponse:
        return p.KeyCreatedResponse.decode(self.call(
            RequestType.KEY_IMPORT, p.KeyImportRequest(algorithm, fmt, material, usage, label).encode()))

    def export_public(self, key_id: int) -> p.PublicKeyResponse:
        return p.PublicKeyResponse.decode(self.call(RequestType.KEY_EXPORT_PUBLIC, p.KeyIdRequest(key_id).encode()))

    def export_key(self, key_id: int, fmt: KeyFormat) -> bytes:
        return self.call(RequestType.KEY_EXPORT, p.KeyExportRequest(key_id, fmt).encode())

    def delete_key(self, key_id: int) -> None:
        self.call(RequestType.KEY_DELETE, p.KeyIdRequest(key_id).encode())

    def describe_key(self, key_id: int) -> p.KeyDescription:
        return p.KeyDescription.decode(self.call(RequestType.KEY_DESCRIBE, p.KeyIdRequest(key_id).encode()))

    def list_keys(self) -> list[tuple[int, Algorithm]]:
        out, start = [], 0
        while True:
            page = p.KeyListResponse.decode(self.call(RequestType.KEY_LIST, p.KeyListRequest(start).encode()))
            out += page.keys
            if not page.more or not page.keys:
                return out
            start = page.keys[-1][0]

    def encrypt(self, key_id: int, plaintext: bytes, aad: bytes = b"") -> bytes:
        """AES-256-GCM; returns nonce || ciphertext || tag (what decrypt takes)."""
        return self.call(RequestType.AES_ENCRYPT, p.AesEncryptRequest(key_id, aad, plaintext).encode())

    def decrypt(self, key_id: int, sealed: bytes, aad: bytes = b"") -> bytes:
        return self.call(RequestType.AES_DECRYPT, p.AesDecryptRequest(key_id, aad, sealed).encode())

    def mldsa_sign(self, key_id: int, message: bytes, context: bytes = b"") -> bytes:
        return self.call(RequestType.MLDSA_SIGN, p.MldsaSignRequest(key_id, message, context).encode())

    def slhdsa_sign(self, key_id: int, message: bytes, context: bytes = b"") -> bytes:
        return self.call(RequestType.SLHDSA_SIGN, p.MldsaSignRequest(key_id, message, context).encode())

    def slhdsa_verify(self, key: p.KeyRef | int, message: bytes, signature: bytes, context: bytes = b"") -> bool:
        """True if valid; False on SIGNATURE_INVALID; other statuses raise."""
        ref = key if isinstance(key, p.KeyRef) else p.KeyRef(key_id=key)
        return self._verify(RequestType.SLHDSA_VERIFY, p.MldsaVerifyRequest(ref, message, signature, context))

    def mldsa_verify(self, key: p.KeyRef | int, message: bytes, signature: bytes, context: bytes = b"") -> bool:
        """True if valid; False on SIGNATURE_INVALID; other statuses raise."""
        ref = key if isinstance(key, p.KeyRef) else p.KeyRef(key_id=key)
        return self._verify(RequestType.MLDSA_VERIFY, p.MldsaVerifyRequest(ref, message, signature, context))

    def ecdsa_sign(self, key_id: int, data: bytes, hash_alg: HashAlg = HashAlg.DEFAULT, flags: int = 0) -> bytes:
        return self.call(RequestType.ECDSA_SIGN, p.EcdsaSignRequest(key_id, data, hash_alg, flags).encode())

    def ecdsa_verify(self, key: p.KeyRef | int, data: bytes, signature: bytes, hash_alg: HashAlg = HashAlg.DEFAULT,
                     flags: int = 0) -> bool:
        ref = key if isinstance(key, p.KeyRef) else p.KeyRef(key_id=key)
        return self._verify(RequestType.ECDSA_VERIFY, p.EcdsaVerifyRequest(ref, data, signature, hash_alg, flags))

    def _verify(self, rtype: RequestType, req) -> bool:
        status, _ = self.transact(rtype, req.encode())
        if status == Status.SIGNATURE_INVALID:
            return False
        if status != Status.SUCCESS:
            raise ServiceStatusError(status, rtype)
        return True

    def mlkem_keygen(self, algorithm: Algorithm = Algorithm.ML_KEM_768, usage: int = 0,
                     label: str = "") -> p.KeyCreatedResponse:
        return p.KeyCreatedResponse.decode(
            self.call(RequestType.MLKEM_KEYGEN, p.KeyGenerateRequest(algorithm, usage, label).encode()))

    def mlkem_encaps(self, key: p.KeyRef | int, return_secret: bool = False) -> p.MlkemEncapsResponse:
        ref = key if isinstance(key, p.KeyRef) else p.KeyRef(key_id=key)
        flags = KemFlags.RETURN_SECRET if return_secret else 0
        return p.MlkemEncapsResponse.decode(self.call(RequestType.MLKEM_ENCAPS,
                                                      p.MlkemEncapsRequest(ref, flags).encode()))

    def mlkem_decaps(self, key_id: int, ciphertext: bytes, return_secret: bool = False) -> p.MlkemDecapsResponse:
        flags = KemFlags.RETURN_SECRET if return_secret else 0
        return p.MlkemDecapsResponse.decode(self.call(RequestType.MLKEM_DECAPS,
                                                      p.MlkemDecapsRequest(key_id, ciphertext, flags).encode()))
