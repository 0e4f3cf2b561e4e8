"""AES-256-GCM encrypt/decrypt. The IV is generated inside the FIPS provider; invocations are counted per key."""
from wvds import ossl
from wvds.crypto_service.errors import ServiceError
from wvds.protocol.constants import Algorithm, KeyUsage, RequestType, Status
from wvds.protocol.payloads import AesDecryptRequest, AesEncryptRequest, AesEncryptResponse

AES = (Algorithm.AES_256_GCM,)


def encrypt(ctx, payload: bytes) -> bytes:
    req = AesEncryptRequest.decode(payload)
    with ctx.keys.using(ctx.peer, req.key_id, KeyUsage.ENCRYPT, AES) as key:
        ctx.keys.count_use(key, ctx.config.gcm_invocation_limit)
        if key.native is not None:  # the key lives in the HSM (keystore.native)
            nonce, ct, tag = key.native.aes_gcm_encrypt(req.aad, req.plaintext)
        else:
            nonce, ct, tag = ossl.aes_gcm_encrypt(key.secret, req.aad, req.plaintext)
        ctx.grant_fast(key)  # this client's next AES requests on this key may take the C fast path
    return AesEncryptResponse(nonce, ct, tag).encode()


def decrypt(ctx, payload: bytes) -> bytes:
    req = AesDecryptRequest.decode(payload)
    with ctx.keys.using(ctx.peer, req.key_id, KeyUsage.DECRYPT, AES) as key:
        try:
            if key.native is not None:
                plaintext = key.native.aes_gcm_decrypt(req.nonce, req.aad, req.ciphertext, req.tag)
            else:
                plaintext = ossl.aes_gcm_decrypt(key.secret, req.nonce, req.aad, req.ciphertext, req.tag)
        except ossl.AuthenticationError:
            raise ServiceError(Status.DECRYPTION_FAILED, "tag check failed") from None
        # Only authenticated nonces enter the replay window, so forgeries cannot evict real entries.
        if key.replay is not None and not key.replay.check_and_record(req.nonce):
            raise ServiceError(Status.NONCE_REUSE, f"nonce replayed on key 0x{key.key_id:08x}")
        ctx.grant_fast(key)
    return plaintext


HANDLERS = {RequestType.AES_ENCRYPT: encrypt, RequestType.AES_DECRYPT: decrypt}
