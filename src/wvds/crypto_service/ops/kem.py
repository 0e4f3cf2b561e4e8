"""ML-KEM keygen / encaps / decaps (FIPS 203).

The shared secret leaves the service only when asked for (RETURN_SECRET) and
allowed: always for an inline public key (the caller chose the peer), otherwise
only if the *caller* may release it: RELEASE_SECRET in the key's policy for its
owner, and in the config grant for anyone else (KeyTable.usage_for). Without RETURN_SECRET the secret
becomes a new AES-256-GCM key (HKDF-SHA256, info MLKEM_AES_HKDF_INFO) owned by
the caller, so ML-KEM + AES-GCM end to end never exposes a secret.

A successful encaps/decaps with a stored key grants it to the client's C fast path, which answers the next
ones that return the secret (those that make an AES key stay here: the key table is Python's).
"""
from wvds import ossl
from wvds.crypto_service.errors import ServiceError
from wvds.crypto_service.ops.keymgmt import generate
from wvds.crypto_service.ops.signatures import public_key
from wvds.protocol.constants import (ML_KEM, MLKEM_AES_HKDF_INFO, Algorithm, KemFlags, KeyFormat, KeyUsage,
                                     RequestType, Status)
from wvds.protocol.payloads import (KeyGenerateRequest, MlkemDecapsRequest, MlkemDecapsResponse,
                                    MlkemEncapsRequest, MlkemEncapsResponse)


def keygen(ctx, payload: bytes) -> bytes:
    req = KeyGenerateRequest.decode(payload)
    if req.algorithm not in ML_KEM:
        raise ServiceError(Status.UNSUPPORTED_ALGORITHM, "MLKEM_KEYGEN needs an ML-KEM parameter set")
    return generate(ctx, payload)


def _settle(ctx, secret: bytes, flags: int, may_release: bool, label: str) -> tuple[int, bytes]:
    """(new AES key id, b"") or (0, secret) according to flags and policy."""
    if flags & ~int(KemFlags.RETURN_SECRET):  # int: ~IntFlag would drop unknown bits
        raise ServiceError(Status.INVALID_PAYLOAD, f"unknown ML-KEM flags 0x{flags:02x}")
    if flags & KemFlags.RETURN_SECRET:
        if not may_release:
            raise ServiceError(Status.PERMISSION_DENIED, "key policy does not allow releasing the shared secret")
        return 0, secret
    aes = ossl.hkdf_sha256(secret, MLKEM_AES_HKDF_INFO, 32)
    key = ctx.keys.import_key(ctx.peer, Algorithm.AES_256_GCM, 0, label, KeyFormat.RAW, aes)
    return key.key_id, b""


def _may_release(ctx, key) -> bool:
    return bool(ctx.keys.usage_for(ctx.peer, key) & KeyUsage.RELEASE_SECRET)


def encaps(ctx, payload: bytes) -> bytes:
    req = MlkemEncapsRequest.decode(payload)
    if req.key.inline:
        alg, pkey, _ = public_key(ctx, req.key, ML_KEM, KeyUsage.ENCAPS)
        ct, secret = ossl.mlkem_encapsulate(pkey)
        may_release, key = True, None
    else:
        with ctx.keys.using(ctx.peer, req.key.key_id, KeyUsage.ENCAPS, ML_KEM) as key:
            alg, may_release = key.algorithm, _may_release(ctx, key)
            ct, secret = ossl.mlkem_encapsulate(key.pkey)
    key_id, released = _settle(ctx, secret, req.flags, may_release, f"ml-kem-encaps:{alg.name}")
    if key is not None:
        ctx.grant_fast_pkey(key)  # the next encapsulations returning the secret may take the C fast path
    return MlkemEncapsResponse(key_id, ct, released).encode()


def decaps(ctx, payload: bytes) -> bytes:
    req = MlkemDecapsRequest.decode(payload)
    with ctx.keys.using(ctx.peer, req.key_id, KeyUsage.DECAPS, ML_KEM) as key:
        try:
            secret = key.engine.mlkem_decapsulate(key, req.ciphertext)
        except ossl.OsslError as e:  # wrong ciphertext length; a wrong one of the right length "succeeds" (implicit rejection)
            raise ServiceError(Status.INVALID_PAYLOAD, f"ML-KEM ciphertext rejected: {e}") from None
        may_release = _may_release(ctx, key)
    key_id, released = _settle(ctx, secret, req.flags, may_release, f"ml-kem-decaps:0x{req.key_id:08x}")
    ctx.grant_fast_pkey(key)
    return MlkemDecapsResponse(key_id, released).encode()


HANDLERS = {RequestType.MLKEM_KEYGEN: keygen, RequestType.MLKEM_ENCAPS: encaps, RequestType.MLKEM_DECAPS: decaps}
