"""Key management: generate, import, export (public; private only if EXPORTABLE), delete, list, describe."""
from wvds import ossl
from wvds.crypto_service.errors import ServiceError
from wvds.protocol.constants import KeyFormat, KeyUsage, RequestType, Status
from wvds.protocol.payloads import (KeyCreatedResponse, KeyDescription, KeyExportRequest, KeyGenerateRequest,
                                    KeyIdRequest, KeyImportRequest, KeyListRequest, KeyListResponse,
                                    PublicKeyResponse)

def _public(key) -> bytes:
    return key.pkey.public_bytes() if key.pkey is not None else b""


def generate(ctx, payload: bytes) -> bytes:
    req = KeyGenerateRequest.decode(payload)
    key = ctx.keys.generate(ctx.peer, req.algorithm, req.usage, req.label)  # the key table chooses the engine
    return KeyCreatedResponse(key.key_id, _public(key)).encode()


def import_key(ctx, payload: bytes) -> bytes:
    req = KeyImportRequest.decode(payload)
    key = ctx.keys.import_key(ctx.peer, req.algorithm, req.usage, req.label, req.format, req.material)
    return KeyCreatedResponse(key.key_id, _public(key)).encode()


def export_public(ctx, payload: bytes) -> bytes:
    key = ctx.keys.get(ctx.peer, KeyIdRequest.decode(payload).key_id)
    if key.pkey is None:
        raise ServiceError(Status.UNSUPPORTED_ALGORITHM, "AES keys have no public part")
    return PublicKeyResponse(key.algorithm, key.pkey.public_bytes()).encode()


def export(ctx, payload: bytes) -> bytes:
    req = KeyExportRequest.decode(payload)
    with ctx.keys.using(ctx.peer, req.key_id) as key:
        return _export(ctx, key, req.format)


def _export(ctx, key, form: KeyFormat) -> bytes:
    if form == KeyFormat.PUBLIC:
        if key.pkey is None:
            raise ServiceError(Status.UNSUPPORTED_ALGORITHM, "AES keys have no public part")
        return key.pkey.public_bytes()
    if key.record.owner_uid != ctx.peer.uid or not key.record.usage & KeyUsage.EXPORTABLE:
        raise ServiceError(Status.PERMISSION_DENIED, f"key 0x{key.key_id:08x} is not exportable")
    if key.record.form == form:
        return key.record.material
    if key.pkey is None or key.record.form == KeyFormat.PUBLIC:
        raise ServiceError(Status.INVALID_PAYLOAD, f"{key.algorithm.name} key cannot be exported as "
                                                   f"{form.name.lower()}")
    try:
        return key.pkey.private_bytes(form.name.lower())
    except ossl.OsslError as e:
        raise ServiceError(Status.INVALID_PAYLOAD, f"cannot export as {form.name.lower()}: {e}") from None


def delete(ctx, payload: bytes) -> bytes:
    ctx.keys.delete(ctx.peer, KeyIdRequest.decode(payload).key_id)
    return b""


def list_keys(ctx, payload: bytes) -> bytes:
    start = KeyListRequest.decode(payload).start_after
    keys = [k for k in ctx.keys.visible(ctx.peer) if k.key_id > start]
    page = keys[:KeyListResponse.MAX_ENTRIES]
    return KeyListResponse([(k.key_id, k.algorithm) for k in page], more=len(keys) > len(page)).encode()


def describe(ctx, payload: bytes) -> bytes:
    key = ctx.keys.get(ctx.peer, KeyIdRequest.decode(payload).key_id)
    r = key.record
    return KeyDescription(r.key_id, r.algorithm, r.usage, r.owner_uid, r.created, key.uses, r.label).encode()


HANDLERS = {
    RequestType.KEY_GENERATE: generate, RequestType.KEY_IMPORT: import_key,
    RequestType.KEY_EXPORT_PUBLIC: export_public, RequestType.KEY_EXPORT: export,
    RequestType.KEY_DELETE: delete, RequestType.KEY_LIST: list_keys, RequestType.KEY_DESCRIBE: describe,
}
