"""AES-256-GCM encrypt/decrypt. The IV is generated inside the FIPS provider; invocations are counted per key."""
from wvds import ossl
from wvds.crypto_service.errors import ServiceError
from wvds.protocol.constants import Algorithm, KeyUsage, RequestType, Status
from wvds.protocol.payloads import AesDecryptRequest, AesEncryptRequest, AesEncryptResponse

AES = (Algorithm.AES_256_GCM,)


def encrypt(ctx, payload: bytes) -> bytes:
    req = AesEncryptRequest.decode(payload)
    with ctx.keys.using(ctx.peer, req.key_id, KeyUsage.ENCRYPT, AES) as key:
        ctx.keys.count_use(key, ctx.config.gcm_invocation_limit)  # starts a protected key's nonce stream
        if key.native is not None:  # the key lives in the HSM (keystore.native)
            nonce = key.counter.next_nonce() if key.windowed else None
            nonce, ct, tag = key.native.aes_gcm_encrypt(req.aad, req.plaintext, nonce)
        elif key.windowed:  # the stream's IV generator lives with the key, in C (docs/replay.md)
            nonce, ct, tag = key.counter.seal(req.aad, req.plaintext)
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
        ctx.keys.accept_nonce(key, req.nonce)  # only now: an authenticated nonce
        ctx.grant_fast(key)
    return plaintext


HANDLERS = {RequestType.AES_ENCRYPT: encrypt, RequestType.AES_DECRYPT: decrypt}
