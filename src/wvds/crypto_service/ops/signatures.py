"""ML-DSA (pure, FIPS 204), SLH-DSA (pure, FIPS 205) and ECDSA P-256/P-384 sign and verify.

Signing runs in the key's engine; verifying runs in the FIPS provider on the public key. A signature or a
verification with a stored key that succeeds here grants the key to the client's C fast path (pkey_fast.c),
which answers its next ones (signatures only with a key of the FIPS provider)."""
from __future__ import annotations

from wvds import ossl
from wvds.algorithms import REGISTRY
from wvds.crypto_service.errors import ServiceError
from wvds.crypto_service.keys import OSSL_NAME, LiveKey
from wvds.protocol.constants import (ECDSA, ML_DSA, SLH_DSA, Algorithm, EcdsaFlags, HashAlg, KeyUsage, RequestType,
                                     Status)
from wvds.protocol.payloads import (EcdsaSignRequest, EcdsaVerifyRequest, KeyRef, MldsaSignRequest,
                                    MldsaVerifyRequest)

DIGEST = {HashAlg.SHA256: "SHA256", HashAlg.SHA384: "SHA384", HashAlg.SHA512: "SHA512"}
DIGEST_SIZE = {"SHA256": 32, "SHA384": 48, "SHA512": 64}
CURVE_DEFAULT = {a: HashAlg[i.default_digest] for a, i in REGISTRY.items() if i.default_digest}  # HashAlg.DEFAULT


def public_key(ctx, ref: KeyRef, family: tuple[Algorithm, ...], need: KeyUsage) \
        -> tuple[Algorithm, ossl.PKey, LiveKey | None]:
    """The public key a verify/encaps request names: a stored key (with usage `need`, also returned) or one sent
    inline."""
    if not ref.inline:
        key = ctx.keys.get(ctx.peer, ref.key_id, need, family)
        return key.algorithm, key.pkey, key
    if ref.algorithm not in family:
        raise ServiceError(Status.UNSUPPORTED_ALGORITHM, f"{ref.algorithm.name} is not valid here")
    try:
        return ref.algorithm, ossl.key_from_public(OSSL_NAME[ref.algorithm], ref.public_key), None
    except ossl.OsslError as e:
        raise ServiceError(Status.INVALID_PAYLOAD, f"inline {ref.algorithm.name} public key rejected: {e}") from None


def _pure_sign(ctx, payload: bytes, family: tuple[Algorithm, ...], sign) -> bytes:
    """sign(key, message, context): the ML-DSA or SLH-DSA signing of the key's engine."""
    req = MldsaSignRequest.decode(payload)
    with ctx.keys.using(ctx.peer, req.key_id, KeyUsage.SIGN, family) as key:
        ctx.keys.count_use(key)
        signature = sign(key, req.message, req.context)
        ctx.grant_fast_pkey(key)  # this client's next signatures with it may take the C fast path
        return signature


def _pure_verify(ctx, payload: bytes, family: tuple[Algorithm, ...], verify, name: str) -> bytes:
    req = MldsaVerifyRequest.decode(payload)
    _, pkey, stored = public_key(ctx, req.key, family, KeyUsage.VERIFY)
    if not verify(pkey, req.message, req.signature, req.context):
        raise ServiceError(Status.SIGNATURE_INVALID, f"{name} signature does not verify")
    if stored is not None:
        ctx.grant_fast_pkey(stored)
    return b""


def mldsa_sign(ctx, payload: bytes) -> bytes:
    return _pure_sign(ctx, payload, ML_DSA, lambda key, m, c: key.engine.mldsa_sign(key, m, c))


def mldsa_verify(ctx, payload: bytes) -> bytes:
    return _pure_verify(ctx, payload, ML_DSA, ossl.mldsa_verify, "ML-DSA")


def slhdsa_sign(ctx, payload: bytes) -> bytes:
    return _pure_sign(ctx, payload, SLH_DSA, lambda key, m, c: key.engine.slhdsa_sign(key, m, c))


def slhdsa_verify(ctx, payload: bytes) -> bytes:
    return _pure_verify(ctx, payload, SLH_DSA, ossl.slhdsa_verify, "SLH-DSA")


def _ecdsa_digest(algorithm: Algorithm, hash_alg: HashAlg, flags: int, data: bytes) -> tuple[str, bool]:
    if flags & ~int(EcdsaFlags.PREHASHED):  # int: ~IntFlag would drop unknown bits
        raise ServiceError(Status.INVALID_PAYLOAD, f"unknown ECDSA flags 0x{flags:02x}")
    name = DIGEST[hash_alg if hash_alg != HashAlg.DEFAULT else CURVE_DEFAULT[algorithm]]
    prehashed = bool(flags & EcdsaFlags.PREHASHED)
    if prehashed and len(data) != DIGEST_SIZE[name]:
        raise ServiceError(Status.INVALID_PAYLOAD, f"prehashed data must be a {name} digest")
    return name, prehashed


def ecdsa_sign(ctx, payload: bytes) -> bytes:
    req = EcdsaSignRequest.decode(payload)
    with ctx.keys.using(ctx.peer, req.key_id, KeyUsage.SIGN, ECDSA) as key:
        digest, prehashed = _ecdsa_digest(key.algorithm, req.hash_alg, req.flags, req.data)
        ctx.keys.count_use(key)
        signature = key.engine.ecdsa_sign(key, req.data, digest, prehashed)
        ctx.grant_fast_pkey(key)
        return signature


def ecdsa_verify(ctx, payload: bytes) -> bytes:
    req = EcdsaVerifyRequest.decode(payload)
    alg, pkey, stored = public_key(ctx, req.key, ECDSA, KeyUsage.VERIFY)
    digest, prehashed = _ecdsa_digest(alg, req.hash_alg, req.flags, req.data)
    if not ossl.ecdsa_verify(pkey, req.data, req.signature, digest, prehashed):
        raise ServiceError(Status.SIGNATURE_INVALID, "ECDSA signature does not verify")
    if stored is not None:
        ctx.grant_fast_pkey(stored)
    return b""


HANDLERS = {RequestType.MLDSA_SIGN: mldsa_sign, RequestType.MLDSA_VERIFY: mldsa_verify,
            RequestType.SLHDSA_SIGN: slhdsa_sign, RequestType.SLHDSA_VERIFY: slhdsa_verify,
            RequestType.ECDSA_SIGN: ecdsa_sign, RequestType.ECDSA_VERIFY: ecdsa_verify}
