"""A stand-in for crypto_service, to test the C library against the Python protocol definitions.

It speaks the real transport (SOCK_SEQPACKET handshake, sealed memfd, eventfd doorbell) through
the library's own wvds_srv_* functions, called with ctypes exactly as the service calls them, and
decodes every request and encodes every response with wvds.protocol.payloads. Each decoded request
must re-encode to the very bytes the C library sent, so the C encoders match payloads.py byte for
byte; the C decoders are checked by what the client programs make of the answers.

The "cryptography" is a toy with the right sizes and the right equalities (a decrypt undoes an
encrypt, a signature verifies under its key, encaps and decaps agree), nothing more.
"""
from __future__ import annotations

import ctypes
import fcntl
import hashlib
import hmac
import json
import mmap
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from wvds.native import bind
from wvds.protocol.constants import (GCM_NONCE_SIZE, MLKEM_AES_HKDF_INFO, Algorithm, KemFlags,
                                     KeyFormat, RequestType, Status)
from wvds.protocol.header import HeaderError, pack_response, parse_request_header
from wvds.protocol.payloads import (REQUEST_PAYLOADS, AesEncryptResponse, KeyCreatedResponse, KeyDescription,
                                    KeyListResponse, MlkemDecapsResponse, MlkemEncapsResponse, PayloadError,
                                    PublicKeyResponse, Reader)

from wvds.transport.linux_shm import HELLO, REQ_AREA, TRANSPORT_MAGIC, WELCOME
SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL

PUBLIC_KEY_SIZE = {Algorithm.ML_DSA_44: 1312, Algorithm.ML_DSA_65: 1952, Algorithm.ML_DSA_87: 2592,
                   Algorithm.ML_KEM_512: 800, Algorithm.ML_KEM_768: 1184, Algorithm.ML_KEM_1024: 1568,
                   Algorithm.ECDSA_P256: 65, Algorithm.ECDSA_P384: 97, Algorithm.AES_256_GCM: 0,
                   Algorithm.SLH_DSA_SHA2_128F: 32}
SIGNATURE_SIZE = {Algorithm.ML_DSA_44: 2420, Algorithm.ML_DSA_65: 3309, Algorithm.ML_DSA_87: 4627,
                  Algorithm.ECDSA_P256: 71, Algorithm.ECDSA_P384: 103, Algorithm.SLH_DSA_SHA2_128F: 17088}
CIPHERTEXT_SIZE = {Algorithm.ML_KEM_512: 768, Algorithm.ML_KEM_768: 1088, Algorithm.ML_KEM_1024: 1568}


def load_srv(lib_path: str) -> ctypes.CDLL:
    """The service library at lib_path with the prototypes of wvds.native.spec, as the service binds it."""
    return bind.bind(ctypes.CDLL(lib_path), "service")


def expand(seed: bytes, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        counter += 1
    return out[:n]


@dataclass
class Key:
    algorithm: Algorithm
    usage: int
    label: str
    secret: bytes
    public: bytes = b""
    uses: int = 0


@dataclass(frozen=True)
class Exchange:
    type: RequestType
    request: object  # the payloads.py dataclass (None for STATUS)
    status: Status
    response: bytes


class ServiceError(Exception):
    def __init__(self, status: Status):
        super().__init__(status.name)
        self.status = status


@dataclass
class ToyCrypto:
    """Key store and toy operations; thread-safe."""
    keys: dict[int, Key] = field(default_factory=dict)
    next_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, algorithm: Algorithm, usage: int, label: str, secret: bytes, public: bytes | None = None) -> int:
        if public is None:
            public = expand(b"pk" + secret, PUBLIC_KEY_SIZE[algorithm])
        with self.lock:
            key_id, self.next_id = self.next_id, self.next_id + 1
            self.keys[key_id] = Key(algorithm, usage, label, secret, public)
        return key_id

    def get(self, key_id: int) -> Key:
        with self.lock:
            if key_id not in self.keys:
                raise ServiceError(Status.KEY_NOT_FOUND)
            return self.keys[key_id]

    def by_public(self, algorithm: Algorithm, public: bytes) -> Key | None:
        with self.lock:
            return next((k for k in self.keys.values() if k.algorithm == algorithm and k.public == public), None)

    # AES: keystream and tag from the key's secret
    def xor(self, key: Key, nonce: bytes, data: bytes) -> bytes:
        return bytes(a ^ b for a, b in zip(data, expand(key.secret + nonce, len(data))))

    def tag(self, key: Key, aad: bytes, nonce: bytes, ct: bytes) -> bytes:
        return hmac.new(key.secret, len(aad).to_bytes(4, "little") + aad + nonce + ct, "sha256").digest()[:16]

    def sign(self, key: Key, context: bytes, message: bytes) -> bytes:
        return expand(hmac.new(key.secret, bytes([len(context)]) + context + message, "sha256").digest(),
                      SIGNATURE_SIZE[key.algorithm])

    def kem_secret(self, public: bytes, ct: bytes) -> bytes:
        return hashlib.sha256(public + ct).digest()


class FakeService:
    """Listens on `path`; serves each client in its own thread with a small worker pool."""

    def __init__(self, lib_path: str, path: str, default_slots: int = 4):
        self.L = load_srv(lib_path)
        self.path = path
        self.default_slots = default_slots
        self.crypto = ToyCrypto()
        self.exchanges: list[Exchange] = []  # decoded requests and their answers, in order of completion
        self.errors: list[str] = []  # anything the C library sent that payloads.py disagrees with
        self.sessions_ended: list[int] = []  # what wvds_srv_next returned when each session ended
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(path)
        self.sock.listen(8)
        self.pool = ThreadPoolExecutor(4)
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self.sock.close()
        self.pool.shutdown(wait=True)
        os.unlink(self.path)

    # --- transport -------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        hello = conn.recv(HELLO.size + 1)
        magic, version, requested, _ = HELLO.unpack(hello)
        assert (magic, version, len(hello)) == (TRANSPORT_MAGIC, 1, HELLO.size)
        slots = requested or self.default_slots
        size = self.L.wvds_srv_shm_size(slots)
        memfd = os.memfd_create("fake-wvds", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(memfd, size)
        mm = mmap.mmap(memfd, size)
        anchor = ctypes.c_char.from_buffer(mm)
        base = ctypes.addressof(anchor)
        assert self.L.wvds_srv_init_control(base, slots, 77) == 0
        fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, SEALS)
        doorbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        welcome = WELCOME.pack(TRANSPORT_MAGIC, 1, 0, slots, 0, size, (size - 4096) // slots, 77, 0)
        socket.send_fds(conn, [welcome], [memfd, doorbell])
        os.close(memfd)
        buf = ctypes.create_string_buffer(REQ_AREA)
        n = ctypes.c_uint32()
        pending = []
        while True:
            slot = self.L.wvds_srv_next(base, slots, doorbell, conn.fileno(), 20, 200, buf, REQ_AREA, ctypes.byref(n))
            if slot == -1:
                continue
            if slot < 0:
                break
            frame = ctypes.string_at(buf, n.value)
            pending.append(self.pool.submit(self._answer, base, slots, slot, frame))
        for f in pending:
            f.result()
        with self._lock:
            self.sessions_ended.append(slot)
        os.close(doorbell)
        del anchor
        mm.close()
        conn.close()

    def _answer(self, base: int, slots: int, slot: int, frame: bytes) -> None:
        status, out = self.answer(frame)
        response = pack_response(status, out)
        assert self.L.wvds_srv_complete(base, slots, slot, response, len(response)) == 0

    def answer(self, frame: bytes) -> tuple[Status, bytes]:
        try:
            rtype = RequestType(parse_request_header(frame).code)
        except HeaderError as e:
            self._error(f"header rejected: {e}")
            return e.status, b""
        try:
            req = self.decode(rtype, frame[8:])
        except PayloadError as e:
            self._error(f"{rtype.name} payload rejected: {e}")
            return e.status, b""
        try:
            status, out = Status.SUCCESS, getattr(self, "do_" + rtype.name.lower())(req)
        except ServiceError as e:
            status, out = e.status, b""
        with self._lock:
            self.exchanges.append(Exchange(rtype, req, status, out))
        return status, out

    def decode(self, rtype: RequestType, payload: bytes):
        """The request as payloads.py reads it; its canonical encoding must be exactly what was sent."""
        if rtype == RequestType.STATUS:
            Reader(payload).end()
            return None
        req = REQUEST_PAYLOADS[rtype].decode(payload)
        if req.encode() != payload:
            self._error(f"{rtype.name}: {payload.hex()} is not the canonical encoding {req.encode().hex()}")
        return req

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    # --- requests: one do_<request type> each ----------------------------------------------

    def do_status(self, req) -> bytes:
        return json.dumps({"service": "fake", "keys": len(self.crypto.keys)}).encode()

    def do_random(self, req) -> bytes:
        return os.urandom(req.length)

    def do_aes_encrypt(self, req) -> bytes:
        key = self.crypto.get(req.key_id)
        nonce = os.urandom(GCM_NONCE_SIZE)
        ct = self.crypto.xor(key, nonce, req.plaintext)
        return AesEncryptResponse(nonce, ct, self.crypto.tag(key, req.aad, nonce, ct)).encode()

    def do_aes_decrypt(self, req) -> bytes:
        key = self.crypto.get(req.key_id)
        if not hmac.compare_digest(self.crypto.tag(key, req.aad, req.nonce, req.ciphertext), req.tag):
            raise ServiceError(Status.DECRYPTION_FAILED)
        return self.crypto.xor(key, req.nonce, req.ciphertext)

    def _generate(self, req) -> bytes:
        secret = os.urandom(32)
        key_id = self.crypto.add(req.algorithm, req.usage, req.label, secret)
        return KeyCreatedResponse(key_id, self.crypto.get(key_id).public).encode()

    do_key_generate = _generate
    do_mlkem_keygen = _generate

    def do_key_import(self, req) -> bytes:
        if req.format == KeyFormat.PUBLIC:
            key_id = self.crypto.add(req.algorithm, req.usage, req.label, b"", req.material)
        else:
            key_id = self.crypto.add(req.algorithm, req.usage, req.label, req.material)
        return KeyCreatedResponse(key_id, self.crypto.get(key_id).public).encode()

    def _public_key(self, ref) -> Key:
        if not ref.inline:
            return self.crypto.get(ref.key_id)
        key = self.crypto.by_public(ref.algorithm, ref.public_key)
        if key is None:  # a public key we never made: cannot verify anything
            return Key(ref.algorithm, 0, "", os.urandom(32), ref.public_key)
        return key

    def do_mldsa_sign(self, req) -> bytes:
        return self.crypto.sign(self.crypto.get(req.key_id), req.context, req.message)

    def do_mldsa_verify(self, req) -> bytes:
        key = self._public_key(req.key)
        if not hmac.compare_digest(self.crypto.sign(key, req.context, req.message), req.signature):
            raise ServiceError(Status.SIGNATURE_INVALID)
        return b""

    do_slhdsa_sign, do_slhdsa_verify = do_mldsa_sign, do_mldsa_verify  # the same payloads

    def do_ecdsa_sign(self, req) -> bytes:
        return self.crypto.sign(self.crypto.get(req.key_id), bytes([req.hash_alg, req.flags]), req.data)

    def do_ecdsa_verify(self, req) -> bytes:
        key = self._public_key(req.key)
        if not hmac.compare_digest(self.crypto.sign(key, bytes([req.hash_alg, req.flags]), req.data), req.signature):
            raise ServiceError(Status.SIGNATURE_INVALID)
        return b""

    def _settle(self, secret: bytes, flags: int, label: str) -> tuple[int, bytes]:
        if flags & KemFlags.RETURN_SECRET:
            return 0, secret
        aes = hmac.new(secret, MLKEM_AES_HKDF_INFO, "sha256").digest()
        return self.crypto.add(Algorithm.AES_256_GCM, 0, label, aes), b""

    def do_mlkem_encaps(self, req) -> bytes:
        key = self._public_key(req.key)
        ct = os.urandom(CIPHERTEXT_SIZE[key.algorithm])
        key_id, secret = self._settle(self.crypto.kem_secret(key.public, ct), req.flags, "encaps")
        return MlkemEncapsResponse(key_id, ct, secret).encode()

    def do_mlkem_decaps(self, req) -> bytes:
        key = self.crypto.get(req.key_id)
        key_id, secret = self._settle(self.crypto.kem_secret(key.public, req.ciphertext), req.flags, "decaps")
        return MlkemDecapsResponse(key_id, secret).encode()

    def do_key_export_public(self, req) -> bytes:
        key = self.crypto.get(req.key_id)
        if not key.public:
            raise ServiceError(Status.UNSUPPORTED_ALGORITHM)
        return PublicKeyResponse(key.algorithm, key.public).encode()

    def do_key_export(self, req) -> bytes:
        key = self.crypto.get(req.key_id)
        return key.public if req.format == KeyFormat.PUBLIC else key.secret

    def do_key_delete(self, req) -> bytes:
        self.crypto.get(req.key_id)
        with self.crypto.lock:
            del self.crypto.keys[req.key_id]
        return b""

    def do_key_list(self, req) -> bytes:
        with self.crypto.lock:
            ids = sorted(k for k in self.crypto.keys if k > req.start_after)
            return KeyListResponse([(k, self.crypto.keys[k].algorithm) for k in ids]).encode()

    def do_key_describe(self, req) -> bytes:
        key = self.crypto.get(req.key_id)
        return KeyDescription(req.key_id, key.algorithm, key.usage, os.getuid(), 1700000000, key.uses,
                              key.label).encode()
