"""Layout of every request and response payload (little-endian, explicit lengths).

One dataclass per message, with `encode()` and a `decode(data)` classmethod. The
service decodes requests and encodes responses; clients do the reverse. Decoding
never trusts a length: anything inconsistent raises PayloadError, which the
service answers with INVALID_PAYLOAD (or the status the error carries).
docs/protocol.md describes the same layouts in prose and tables.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from wvds.protocol.constants import (GCM_NONCE_SIZE, GCM_TAG_SIZE, MAX_CONTEXT_SIZE, MAX_LABEL_SIZE, MAX_PAYLOAD,
                                     Algorithm, HashAlg, KeyFormat, KeyRefKind, RequestType, Status)


class PayloadError(Exception):
    def __init__(self, message: str, status: Status = Status.INVALID_PAYLOAD):
        super().__init__(message)
        self.status = status


class Reader:
    """Bounds-checked cursor over a payload."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PayloadError(f"{what}: needs {n} bytes, {len(self.data) - self.pos} left")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return struct.unpack("<H", self.take(2, what))[0]

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack("<Q", self.take(8, what))[0]

    def rest(self) -> bytes:
        out = bytes(self.data[self.pos:])
        self.pos = len(self.data)
        return out

    def end(self) -> None:
        if self.pos != len(self.data):
            raise PayloadError(f"{len(self.data) - self.pos} unexpected trailing bytes")

    def algorithm(self) -> Algorithm:
        raw = self.u8("algorithm")
        try:
            return Algorithm(raw)
        except ValueError:
            raise PayloadError(f"unknown algorithm 0x{raw:02x}", Status.UNSUPPORTED_ALGORITHM) from None

    def label(self) -> str:
        n = self.u8("label length")
        if n > MAX_LABEL_SIZE:
            raise PayloadError(f"label of {n} bytes exceeds {MAX_LABEL_SIZE}")
        try:
            return self.take(n, "label").decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("label is not UTF-8") from None


def _label(s: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) > MAX_LABEL_SIZE:
        raise ValueError(f"label longer than {MAX_LABEL_SIZE} bytes")
    return bytes([len(b)]) + b


def _ctx(ctx: bytes) -> bytes:
    if len(ctx) > MAX_CONTEXT_SIZE:
        raise ValueError(f"context longer than {MAX_CONTEXT_SIZE} bytes")
    return bytes([len(ctx)]) + ctx


@dataclass(frozen=True)
class KeyRef:
    """A public key named by id (stored key) or carried inline (algorithm + raw public key)."""
    key_id: int = 0
    algorithm: Algorithm | None = None
    public_key: bytes = b""

    @property
    def inline(self) -> bool:
        return self.algorithm is not None

    def encode(self) -> bytes:
        if not self.inline:
            return struct.pack("<BI", KeyRefKind.KEY_ID, self.key_id)
        return struct.pack("<BBH", KeyRefKind.INLINE, self.algorithm, len(self.public_key)) + self.public_key

    @classmethod
    def read(cls, r: Reader) -> "KeyRef":
        kind = r.u8("key reference kind")
        if kind == KeyRefKind.KEY_ID:
            return cls(key_id=r.u32("key id"))
        if kind == KeyRefKind.INLINE:
            alg = r.algorithm()
            return cls(algorithm=alg, public_key=r.take(r.u16("public key length"), "public key"))
        raise PayloadError(f"unknown key reference kind {kind}")


# --- AES-256-GCM -----------------------------------------------------------------

@dataclass(frozen=True)
class AesEncryptRequest:  # original layout: key id, AAD length, AAD, plaintext
    key_id: int
    aad: bytes
    plaintext: bytes

    def encode(self) -> bytes:
        return struct.pack("<IH", self.key_id, len(self.aad)) + self.aad + self.plaintext

    @classmethod
    def decode(cls, data: bytes) -> "AesEncryptRequest":
        r = Reader(data)
        key_id = r.u32("key id")
        aad = r.take(r.u16("aad length"), "aad")
        return cls(key_id, aad, r.rest())


@dataclass(frozen=True)
class AesEncryptResponse:  # nonce || ciphertext || tag: exactly what decrypt takes back
    nonce: bytes
    ciphertext: bytes
    tag: bytes

    def encode(self) -> bytes:
        return self.nonce + self.ciphertext + self.tag

    @property
    def sealed(self) -> bytes:
        return self.encode()

    @classmethod
    def decode(cls, data: bytes) -> "AesEncryptResponse":
        if len(data) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
            raise PayloadError("encrypt response shorter than nonce + tag")
        return cls(data[:GCM_NONCE_SIZE], data[GCM_NONCE_SIZE:-GCM_TAG_SIZE], data[-GCM_TAG_SIZE:])


@dataclass(frozen=True)
class AesDecryptRequest:  # key id, AAD length, AAD, nonce || ciphertext || tag
    key_id: int
    aad: bytes
    sealed: bytes

    def encode(self) -> bytes:
        return struct.pack("<IH", self.key_id, len(self.aad)) + self.aad + self.sealed

    @classmethod
    def decode(cls, data: bytes) -> "AesDecryptRequest":
        r = Reader(data)
        key_id = r.u32("key id")
        aad = r.take(r.u16("aad length"), "aad")
        sealed = r.rest()
        if len(sealed) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
            raise PayloadError("sealed data shorter than nonce + tag")
        return cls(key_id, aad, sealed)

    @property
    def nonce(self) -> bytes:
        return self.sealed[:GCM_NONCE_SIZE]

    @property
    def ciphertext(self) -> bytes:
        return self.sealed[GCM_NONCE_SIZE:-GCM_TAG_SIZE]

    @property
    def tag(self) -> bytes:
        return self.sealed[-GCM_TAG_SIZE:]


# --- signatures ------------------------------------------------------------------

@dataclass(frozen=True)
class MldsaSignRequest:  # key id, context length (u8), context, message
    key_id: int
    message: bytes
    context: bytes = b""

    def encode(self) -> bytes:
        return struct.pack("<I", self.key_id) + _ctx(self.context) + self.message

    @classmethod
    def decode(cls, data: bytes) -> "MldsaSignRequest":
        r = Reader(data)
        key_id = r.u32("key id")
        ctx = r.take(r.u8("context length"), "context")
        return cls(key_id, r.rest(), ctx)


@dataclass(frozen=True)
class MldsaVerifyRequest:  # key ref, context length, context, signature length (u16), signature, message
    key: KeyRef
    message: bytes
    signature: bytes
    context: bytes = b""

    def encode(self) -> bytes:
        return (self.key.encode() + _ctx(self.context) + struct.pack("<H", len(self.signature)) + self.signature
                + self.message)

    @classmethod
    def decode(cls, data: bytes) -> "MldsaVerifyRequest":
        r = Reader(data)
        key = KeyRef.read(r)
        ctx = r.take(r.u8("context length"), "context")
        sig = r.take(r.u16("signature length"), "signature")
        return cls(key, r.rest(), sig, ctx)


@dataclass(frozen=True)
class EcdsaSignRequest:  # key id, hash (u8), flags (u8), data
    key_id: int
    data: bytes
    hash_alg: HashAlg = HashAlg.DEFAULT
    flags: int = 0

    def encode(self) -> bytes:
        return struct.pack("<IBB", self.key_id, self.hash_alg, self.flags) + self.data

    @classmethod
    def decode(cls, data: bytes) -> "EcdsaSignRequest":
        r = Reader(data)
        key_id = r.u32("key id")
        return cls(key_id, hash_alg=_hash(r), flags=r.u8("flags"), data=r.rest())


@dataclass(frozen=True)
class EcdsaVerifyRequest:  # key ref, hash, flags, signature length (u16), DER signature, data
    key: KeyRef
    data: bytes
    signature: bytes
    hash_alg: HashAlg = HashAlg.DEFAULT
    flags: int = 0

    def encode(self) -> bytes:
        return (self.key.encode() + struct.pack("<BBH", self.hash_alg, self.flags, len(self.signature))
                + self.signature + self.data)

    @classmethod
    def decode(cls, data: bytes) -> "EcdsaVerifyRequest":
        r = Reader(data)
        key = KeyRef.read(r)
        h = _hash(r)
        flags = r.u8("flags")
        sig = r.take(r.u16("signature length"), "signature")
        return cls(key, r.rest(), sig, h, flags)


def _hash(r: Reader) -> HashAlg:
    raw = r.u8("hash algorithm")
    try:
        return HashAlg(raw)
    except ValueError:
        raise PayloadError(f"unknown hash algorithm 0x{raw:02x}", Status.UNSUPPORTED_ALGORITHM) from None


# --- ML-KEM ----------------------------------------------------------------------

@dataclass(frozen=True)
class MlkemEncapsRequest:  # key ref, flags (u8)
    key: KeyRef
    flags: int = 0

    def encode(self) -> bytes:
        return self.key.encode() + bytes([self.flags])

    @classmethod
    def decode(cls, data: bytes) -> "MlkemEncapsRequest":
        r = Reader(data)
        key = KeyRef.read(r)
        flags = r.u8("flags")
        r.end()
        return cls(key, flags)


@dataclass(frozen=True)
class MlkemEncapsResponse:  # new key id (u32, 0 when the secret is returned), ct len (u16), ct, secret len (u8), secret
    key_id: int
    ciphertext: bytes
    secret: bytes = b""

    def encode(self) -> bytes:
        return (struct.pack("<IH", self.key_id, len(self.ciphertext)) + self.ciphertext
                + bytes([len(self.secret)]) + self.secret)

    @classmethod
    def decode(cls, data: bytes) -> "MlkemEncapsResponse":
        r = Reader(data)
        key_id = r.u32("key id")
        ct = r.take(r.u16("ciphertext length"), "ciphertext")
        secret = r.take(r.u8("secret length"), "secret")
        r.end()
        return cls(key_id, ct, secret)


@dataclass(frozen=True)
class MlkemDecapsRequest:  # key id, flags (u8), ciphertext
    key_id: int
    ciphertext: bytes
    flags: int = 0

    def encode(self) -> bytes:
        return struct.pack("<IB", self.key_id, self.flags) + self.ciphertext

    @classmethod
    def decode(cls, data: bytes) -> "MlkemDecapsRequest":
        r = Reader(data)
        key_id = r.u32("key id")
        flags = r.u8("flags")
        return cls(key_id, r.rest(), flags)


@dataclass(frozen=True)
class MlkemDecapsResponse:  # new key id (u32, 0 when the secret is returned), secret len (u8), secret
    key_id: int
    secret: bytes = b""

    def encode(self) -> bytes:
        return struct.pack("<IB", self.key_id, len(self.secret)) + self.secret

    @classmethod
    def decode(cls, data: bytes) -> "MlkemDecapsResponse":
        r = Reader(data)
        key_id = r.u32("key id")
        secret = r.take(r.u8("secret length"), "secret")
        r.end()
        return cls(key_id, secret)


# --- random ----------------------------------------------------------------------

@dataclass(frozen=True)
class RandomRequest:  # length (u32), at most MAX_PAYLOAD
    length: int

    def encode(self) -> bytes:
        return struct.pack("<I", self.length)

    @classmethod
    def decode(cls, data: bytes) -> "RandomRequest":
        r = Reader(data)
        n = r.u32("length")
        r.end()
        if n > MAX_PAYLOAD:
            raise PayloadError(f"{n} random bytes requested, at most {MAX_PAYLOAD}", Status.PAYLOAD_TOO_LARGE)
        return cls(n)


# --- key management --------------------------------------------------------------

@dataclass(frozen=True)
class KeyGenerateRequest:  # algorithm (u8), usage (u32, 0 = default), label length (u8), label
    algorithm: Algorithm
    usage: int = 0
    label: str = ""

    def encode(self) -> bytes:
        return struct.pack("<BI", self.algorithm, self.usage) + _label(self.label)

    @classmethod
    def decode(cls, data: bytes) -> "KeyGenerateRequest":
        r = Reader(data)
        alg = r.algorithm()
        usage = r.u32("usage")
        label = r.label()
        r.end()
        return cls(alg, usage, label)


@dataclass(frozen=True)
class KeyCreatedResponse:  # key id (u32), public key length (u16), public key (empty for AES)
    key_id: int
    public_key: bytes = b""

    def encode(self) -> bytes:
        return struct.pack("<IH", self.key_id, len(self.public_key)) + self.public_key

    @classmethod
    def decode(cls, data: bytes) -> "KeyCreatedResponse":
        r = Reader(data)
        key_id = r.u32("key id")
        pk = r.take(r.u16("public key length"), "public key")
        r.end()
        return cls(key_id, pk)


@dataclass(frozen=True)
class KeyImportRequest:  # algorithm, usage (u32), format (u8), label length, label, material
    algorithm: Algorithm
    format: KeyFormat
    material: bytes
    usage: int = 0
    label: str = ""

    def encode(self) -> bytes:
        return struct.pack("<BIB", self.algorithm, self.usage, self.format) + _label(self.label) + self.material

    @classmethod
    def decode(cls, data: bytes) -> "KeyImportRequest":
        r = Reader(data)
        alg = r.algorithm()
        usage = r.u32("usage")
        raw = r.u8("format")
        try:
            fmt = KeyFormat(raw)
        except ValueError:
            raise PayloadError(f"unknown key format 0x{raw:02x}") from None
        label = r.label()
        return cls(alg, fmt, r.rest(), usage, label)


@dataclass(frozen=True)
class KeyIdRequest:  # key id (u32): KEY_EXPORT_PUBLIC, KEY_DELETE, KEY_DESCRIBE
    key_id: int

    def encode(self) -> bytes:
        return struct.pack("<I", self.key_id)

    @classmethod
    def decode(cls, data: bytes) -> "KeyIdRequest":
        r = Reader(data)
        key_id = r.u32("key id")
        r.end()
        return cls(key_id)


@dataclass(frozen=True)
class PublicKeyResponse:  # algorithm (u8), public key (rest)
    algorithm: Algorithm
    public_key: bytes

    def encode(self) -> bytes:
        return bytes([self.algorithm]) + self.public_key

    @classmethod
    def decode(cls, data: bytes) -> "PublicKeyResponse":
        r = Reader(data)
        return cls(r.algorithm(), r.rest())


@dataclass(frozen=True)
class KeyExportRequest:  # key id (u32), format (u8)
    key_id: int
    format: KeyFormat

    def encode(self) -> bytes:
        return struct.pack("<IB", self.key_id, self.format)

    @classmethod
    def decode(cls, data: bytes) -> "KeyExportRequest":
        r = Reader(data)
        key_id = r.u32("key id")
        raw = r.u8("format")
        r.end()
        try:
            return cls(key_id, KeyFormat(raw))
        except ValueError:
            raise PayloadError(f"unknown key format 0x{raw:02x}") from None


@dataclass(frozen=True)
class KeyListRequest:  # start after key id (u32, 0 = from the beginning)
    start_after: int = 0

    def encode(self) -> bytes:
        return struct.pack("<I", self.start_after)

    @classmethod
    def decode(cls, data: bytes) -> "KeyListRequest":
        r = Reader(data)
        start = r.u32("start after")
        r.end()
        return cls(start)


@dataclass(frozen=True)
class KeyListResponse:  # more (u8), count (u16), count x (key id u32, algorithm u8), ascending ids
    keys: list[tuple[int, Algorithm]] = field(default_factory=list)
    more: bool = False

    MAX_ENTRIES = 4096

    def encode(self) -> bytes:
        return struct.pack("<BH", int(self.more), len(self.keys)) + b"".join(
            struct.pack("<IB", k, a) for k, a in self.keys)

    @classmethod
    def decode(cls, data: bytes) -> "KeyListResponse":
        r = Reader(data)
        more = bool(r.u8("more"))
        n = r.u16("count")
        keys = [(r.u32("key id"), r.algorithm()) for _ in range(n)]
        r.end()
        return cls(keys, more)


@dataclass(frozen=True)
class KeyDescription:
    """KEY_DESCRIBE response: key id, algorithm, usage (u32), owner uid (u32), created (u64, Unix
    seconds), uses (u64: encryptions for AES, signatures for signing keys), label length, label."""
    key_id: int
    algorithm: Algorithm
    usage: int
    owner_uid: int
    created: int
    uses: int
    label: str = ""

    def encode(self) -> bytes:
        return struct.pack("<IBIIQQ", self.key_id, self.algorithm, self.usage, self.owner_uid, self.created,
                           self.uses) + _label(self.label)

    @classmethod
    def decode(cls, data: bytes) -> "KeyDescription":
        r = Reader(data)
        out = cls(r.u32("key id"), r.algorithm(), r.u32("usage"), r.u32("owner"), r.u64("created"),
                  r.u64("uses"), r.label())
        r.end()
        return out


# STATUS has an empty request and answers a UTF-8 JSON object (see docs/protocol.md).

REQUEST_PAYLOADS = {
    RequestType.AES_ENCRYPT: AesEncryptRequest,
    RequestType.AES_DECRYPT: AesDecryptRequest,
    RequestType.MLDSA_SIGN: MldsaSignRequest,
    RequestType.MLDSA_VERIFY: MldsaVerifyRequest,
    RequestType.SLHDSA_SIGN: MldsaSignRequest,  # the same layouts: key, context, message (and signature)
    RequestType.SLHDSA_VERIFY: MldsaVerifyRequest,
    RequestType.MLKEM_KEYGEN: KeyGenerateRequest,
    RequestType.MLKEM_ENCAPS: MlkemEncapsRequest,
    RequestType.MLKEM_DECAPS: MlkemDecapsRequest,
    RequestType.ECDSA_SIGN: EcdsaSignRequest,
    RequestType.ECDSA_VERIFY: EcdsaVerifyRequest,
    RequestType.RANDOM: RandomRequest,
    RequestType.KEY_GENERATE: KeyGenerateRequest,
    RequestType.KEY_IMPORT: KeyImportRequest,
    RequestType.KEY_EXPORT_PUBLIC: KeyIdRequest,
    RequestType.KEY_DELETE: KeyIdRequest,
    RequestType.KEY_LIST: KeyListRequest,
    RequestType.KEY_DESCRIBE: KeyIdRequest,
    RequestType.KEY_EXPORT: KeyExportRequest,
}
