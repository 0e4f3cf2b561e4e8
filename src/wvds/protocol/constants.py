"""Every number that appears on the wire.

The first-generation codes (request types 0x01-0x22, statuses 0x00-0x09, the
AES_ENCRYPT payload) are the original product's and must never change meaning;
everything else is ours, documented in docs/protocol.md and versioned by
PROTOCOL_VERSION. Adding a code is compatible; changing one is not.
"""
from enum import IntEnum, IntFlag

REQUEST_MAGIC = 0xC7
RESPONSE_MAGIC = 0xC8
PROTOCOL_VERSION = 0x01
HEADER_SIZE = 8

# Payload limits. A request payload (the bytes after the 8-byte header) may be at
# most MAX_PAYLOAD bytes. Responses may exceed it by the AEAD overhead and a few
# fixed fields (an encrypt response is nonce + ciphertext + tag), never by more
# than RESPONSE_OVERHEAD.
MAX_PAYLOAD = 64 * 1024
RESPONSE_OVERHEAD = 256
MAX_RESPONSE_PAYLOAD = MAX_PAYLOAD + RESPONSE_OVERHEAD

GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16
AES_256_KEY_SIZE = 32
MAX_CONTEXT_SIZE = 255  # ML-DSA context string (FIPS 204)
MAX_LABEL_SIZE = 64
SHARED_SECRET_SIZE = 32  # ML-KEM shared secret, every parameter set
# HKDF-SHA256 info for turning an ML-KEM shared secret into an AES-256-GCM key.
# Published so a peer outside the service derives the same key.
MLKEM_AES_HKDF_INFO = b"WVDS ML-KEM shared secret to AES-256-GCM key v1"


class RequestType(IntEnum):
    # original product
    AES_ENCRYPT = 0x01
    AES_DECRYPT = 0x02
    MLDSA_SIGN = 0x10
    MLDSA_VERIFY = 0x11
    SLHDSA_SIGN = 0x12  # ours: the same payloads as MLDSA_SIGN / MLDSA_VERIFY, for SLH-DSA keys
    SLHDSA_VERIFY = 0x13
    MLKEM_KEYGEN = 0x20
    MLKEM_ENCAPS = 0x21
    MLKEM_DECAPS = 0x22
    # ours
    ECDSA_SIGN = 0x30
    ECDSA_VERIFY = 0x31
    RANDOM = 0x38
    KEY_GENERATE = 0x40
    KEY_IMPORT = 0x41
    KEY_EXPORT_PUBLIC = 0x42
    KEY_DELETE = 0x43
    KEY_LIST = 0x44
    KEY_DESCRIBE = 0x45
    KEY_EXPORT = 0x46
    STATUS = 0x50


class Status(IntEnum):
    # original product
    SUCCESS = 0x00
    INVALID_HEADER = 0x01
    INVALID_TYPE = 0x02
    INVALID_PAYLOAD = 0x03
    KEY_NOT_FOUND = 0x04
    CRYPTO_ERROR = 0x05
    DECRYPTION_FAILED = 0x06
    RATE_LIMITED = 0x07
    NONCE_REUSE = 0x08
    PAYLOAD_TOO_LARGE = 0x09
    # ours
    PERMISSION_DENIED = 0x0A  # the key's policy does not allow this operation
    SIGNATURE_INVALID = 0x0B  # verify: well-formed request, signature does not verify
    KEY_EXHAUSTED = 0x0C  # AES key reached its SP 800-38D invocation limit: rotate it
    UNSUPPORTED_ALGORITHM = 0x0D  # algorithm id unknown or not valid for this operation
    STORAGE_ERROR = 0x0E  # the key store could not persist the change; nothing changed
    QUOTA_EXCEEDED = 0x0F  # the client owns its maximum number of keys
    SHUTTING_DOWN = 0x10
    INTERNAL_ERROR = 0x11


class Algorithm(IntEnum):
    AES_256_GCM = 0x01
    ML_DSA_44 = 0x10
    ML_DSA_65 = 0x11
    ML_DSA_87 = 0x12
    ML_KEM_512 = 0x20
    ML_KEM_768 = 0x21
    ML_KEM_1024 = 0x22
    ECDSA_P256 = 0x30
    ECDSA_P384 = 0x31
    # SLH-DSA (FIPS 205), the twelve parameter sets: s = small signatures, f = fast signing
    SLH_DSA_SHA2_128S = 0x40
    SLH_DSA_SHA2_128F = 0x41
    SLH_DSA_SHA2_192S = 0x42
    SLH_DSA_SHA2_192F = 0x43
    SLH_DSA_SHA2_256S = 0x44
    SLH_DSA_SHA2_256F = 0x45
    SLH_DSA_SHAKE_128S = 0x46
    SLH_DSA_SHAKE_128F = 0x47
    SLH_DSA_SHAKE_192S = 0x48
    SLH_DSA_SHAKE_192F = 0x49
    SLH_DSA_SHAKE_256S = 0x4A
    SLH_DSA_SHAKE_256F = 0x4B


ML_DSA = (Algorithm.ML_DSA_44, Algorithm.ML_DSA_65, Algorithm.ML_DSA_87)
ML_KEM = (Algorithm.ML_KEM_512, Algorithm.ML_KEM_768, Algorithm.ML_KEM_1024)
ECDSA = (Algorithm.ECDSA_P256, Algorithm.ECDSA_P384)
SLH_DSA = tuple(a for a in Algorithm if a.name.startswith("SLH_DSA_"))


class KeyUsage(IntFlag):
    """A key's policy: what may be done with it. Checked on every request."""
    ENCRYPT = 0x0001
    DECRYPT = 0x0002
    SIGN = 0x0004
    VERIFY = 0x0008
    ENCAPS = 0x0010
    DECAPS = 0x0020
    RELEASE_SECRET = 0x0040  # ML-KEM: the raw shared secret may be returned to the client
    EXPORTABLE = 0x0080  # KEY_EXPORT may return the private key material
    REPLAY_PROTECT = 0x0100  # AES: decrypt rejects a nonce seen before (NONCE_REUSE); the default
    REPLAYABLE = 0x0200  # AES: opt out of REPLAY_PROTECT (data at rest: the same blob decrypts at every boot)


DEFAULT_USAGE = {
    Algorithm.AES_256_GCM: KeyUsage.ENCRYPT | KeyUsage.DECRYPT,
    **{a: KeyUsage.SIGN | KeyUsage.VERIFY for a in ML_DSA + ECDSA + SLH_DSA},
    **{a: KeyUsage.ENCAPS | KeyUsage.DECAPS for a in ML_KEM},
}


class KeyFormat(IntEnum):
    """Form of key material in KEY_IMPORT / KEY_EXPORT."""
    RAW = 0x00  # AES: the 32 key bytes; ECDSA: the private scalar, big-endian, curve size
    SEED = 0x01  # ML-DSA: 32-byte xi; ML-KEM: 64-byte d || z; SLH-DSA: SK.seed || SK.prf || PK.seed (import only)
    EXPANDED = 0x02  # ML-DSA / ML-KEM / SLH-DSA: the private key of FIPS 204 / FIPS 203 / FIPS 205
    PUBLIC = 0x03  # a public key only (raw ML-DSA/ML-KEM encoding; EC uncompressed point)


class KeyRefKind(IntEnum):
    """How verify/encaps name the public key: a stored key, or one sent inline."""
    KEY_ID = 0x00
    INLINE = 0x01


class KemFlags(IntFlag):
    RETURN_SECRET = 0x01  # return the shared secret instead of storing it as an AES key


class EcdsaFlags(IntFlag):
    PREHASHED = 0x01  # data is already the digest of the message


class HashAlg(IntEnum):
    DEFAULT = 0x00  # SHA-256 for P-256, SHA-384 for P-384
    SHA256 = 0x01
    SHA384 = 0x02
    SHA512 = 0x03
