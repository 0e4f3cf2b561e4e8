"""The software engine: keys held by this process, every operation in the FIPS provider (wvds.ossl).

The handle of a key is its OpenSSL key (None for AES, whose 32 bytes are the record's material and
live in C beside the key's invocation counter, for the fast path and the replay stream).
"""
from __future__ import annotations

from typing import Any

from wvds import ossl
from wvds.algorithms import ossl_names
from wvds.crypto_service.engines.base import Engine
from wvds.crypto_service.errors import ServiceError
from wvds.keystore import KeyRecord
from wvds.protocol.constants import AES_256_KEY_SIZE, ECDSA, SLH_DSA, Algorithm, KeyFormat, Status

OSSL_NAME = ossl_names()
# How generated keys are stored: the smallest complete form (OpenSSL keeps no seed of an SLH-DSA key: its
# private key, 4n bytes, it is).
STORED_FORM = {a: (KeyFormat.RAW if a in ECDSA else KeyFormat.EXPANDED if a in SLH_DSA else KeyFormat.SEED)
               for a in OSSL_NAME}


def parse_key(algorithm: Algorithm, form: KeyFormat, material: bytes) -> "ossl.PKey | None":
    """Turn stored or imported material into a usable key; ServiceError(INVALID_PAYLOAD) if malformed."""
    if algorithm == Algorithm.AES_256_GCM:
        if form != KeyFormat.RAW or len(material) != AES_256_KEY_SIZE:
            raise ServiceError(Status.INVALID_PAYLOAD, "AES-256 keys are imported as 32 raw bytes")
        return None
    name = OSSL_NAME[algorithm]
    try:
        if form == KeyFormat.PUBLIC:
            return ossl.key_from_public(name, material)
        if form == KeyFormat.SEED and algorithm not in ECDSA:
            return ossl.key_from_seed(name, material)
        if form == KeyFormat.EXPANDED and algorithm not in ECDSA:
            return ossl.key_from_private(name, material)
        if form == KeyFormat.RAW and algorithm in ECDSA:
            return ossl.key_from_private(name, material)
    except ossl.OsslError as e:
        raise ServiceError(Status.INVALID_PAYLOAD, f"{name} {form.name.lower()} key rejected: {e}") from None
    raise ServiceError(Status.INVALID_PAYLOAD, f"{name} keys cannot be given in {form.name.lower()} form")


class SoftwareEngine(Engine):
    name = "software"
    in_process = True

    def algorithms(self) -> frozenset[Algorithm]:
        return frozenset(Algorithm)

    def generate(self, key_id: int, algorithm: Algorithm) -> tuple[KeyFormat, bytes, Any]:
        if algorithm == Algorithm.AES_256_GCM:
            return KeyFormat.RAW, ossl.random_bytes(AES_256_KEY_SIZE), None
        pkey = ossl.generate_key(OSSL_NAME[algorithm])
        form = STORED_FORM[algorithm]
        return form, pkey.private_bytes(form.name.lower()), pkey

    def open(self, record: KeyRecord) -> Any:
        return parse_key(record.algorithm, record.form, record.material)

    def open_material(self, algorithm: Algorithm, form: KeyFormat, material: bytes) -> Any:
        """The handle of imported material (ServiceError(INVALID_PAYLOAD) if malformed)."""
        return parse_key(algorithm, form, material)

    def openssl_key(self, algorithm: Algorithm, handle: Any) -> "ossl.PKey | None":
        return handle  # the whole key

    def nonce_stream_start(self) -> int:
        return 0  # unused: the FIPS provider draws the counter's start itself (EVP_CTRL_GCM_IV_GEN)

    def aes_gcm_encrypt(self, key, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes, bytes]:
        if key.windowed:  # the stream's IV generator lives with the key, in C (docs/replay.md)
            return key.counter.seal(aad, plaintext)
        return ossl.aes_gcm_encrypt(key.secret, aad, plaintext)

    def aes_gcm_decrypt(self, key, nonce: bytes, aad: bytes, ciphertext: bytes, tag: bytes) -> bytes:
        return ossl.aes_gcm_decrypt(key.secret, nonce, aad, ciphertext, tag)

    def mldsa_sign(self, key, message: bytes, context: bytes) -> bytes:
        return ossl.mldsa_sign(key.pkey, message, context)

    def slhdsa_sign(self, key, message: bytes, context: bytes) -> bytes:
        return ossl.slhdsa_sign(key.pkey, message, context)

    def ecdsa_sign(self, key, data: bytes, digest: str, prehashed: bool) -> bytes:
        return ossl.ecdsa_sign(key.pkey, data, digest, prehashed)

    def mlkem_decapsulate(self, key, ciphertext: bytes) -> bytes:
        return ossl.mlkem_decapsulate(key.pkey, ciphertext)
