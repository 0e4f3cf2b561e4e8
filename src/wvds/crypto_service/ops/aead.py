"""AES-256-GCM encrypt/decrypt, by the key's engine. Invocations are counted per key; the IV is never the client's."""
from wvds import ossl
from wvds.crypto_service.errors import ServiceError
from wvds.protocol.constants import Algorithm, KeyUsage, RequestType, Status
from wvds.protocol.payloads import AesDecryptRequest, AesEncryptRequest, AesEncryptResponse

AES = (Algorithm.AES_256_GCM,)


def encrypt(ctx, payload: bytes) -> bytes:
    req = AesEncryptRequest.decode(payload)
    with ctx.keys.using(ctx.peer, req.key_id, KeyUsage.ENCRYPT, AES) as key:
        ctx.keys.count_use(key, ctx.config.gcm_invocation_limit)  # starts a protected key's nonce stream
        nonce, ct, tag = key.engine.aes_gcm_encrypt(key, req.aad, req.plaintext)
        ctx.grant_fast(key)  # this client's next AES requests on this key may take the C fast path
    return AesEncryptResponse(nonce, ct, tag).encode()


def decrypt(ctx, payload: bytes) -> bytes:
    req = AesDecryptRequest.decode(payload)
    with ctx.keys.using(ctx.peer, req.key_id, KeyUsage.DECRYPT, AES) as key:
        try:
            plaintext = key.engine.aes_gcm_decrypt(key, req.nonce, req.aad, req.ciphertext, req.tag)
        except ossl.AuthenticationError:
            raise ServiceError(Status.DECRYPTION_FAILED, "tag check failed") from None
        ctx.keys.accept_nonce(key, req.nonce)  # only now: an authenticated nonce
        ctx.grant_fast(key)
    return plaintext


HANDLERS = {RequestType.AES_ENCRYPT: encrypt, RequestType.AES_DECRYPT: decrypt}
