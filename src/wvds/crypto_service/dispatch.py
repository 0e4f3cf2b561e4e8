"""From a request frame (already copied out of shared memory) to a response frame.

Order of checks: rate limit (unless the caller has already taken the token: the
session takes it before it queues a request), header (magic, version, flags,
length, type), then the handler decodes its payload and looks up its key before
any cryptography. This function never raises: every failure is a status.
"""
from __future__ import annotations

import logging
import time

from wvds import ossl
from wvds.crypto_service.context import RequestContext
from wvds.crypto_service.errors import ServiceError
from wvds.crypto_service.ops import HANDLERS
from wvds.crypto_service.fastpath import TokenBucket
from wvds.protocol.constants import HEADER_SIZE, MAX_RESPONSE_PAYLOAD, RequestType, Status
from wvds.protocol.header import HeaderError, pack_response, parse_request_header
from wvds.protocol.payloads import PayloadError

log = logging.getLogger("wvds.dispatch")


def handle(ctx: RequestContext, bucket: TokenBucket | None, frame: bytes) -> bytes:
    started = time.perf_counter()
    rtype, status, payload = None, Status.SUCCESS, b""
    try:
        if bucket is not None and not bucket.allow():
            raise ServiceError(Status.RATE_LIMITED, "rate limit")
        rtype = RequestType(parse_request_header(frame).code)
        payload = HANDLERS[rtype](ctx, frame[HEADER_SIZE:])
        if len(payload) > MAX_RESPONSE_PAYLOAD:
            raise ServiceError(Status.INTERNAL_ERROR, f"response of {len(payload)} bytes exceeds the limit")
    except (HeaderError, PayloadError, ServiceError) as e:
        status, payload = e.status, b""
        log.log(logging.INFO if status != Status.RATE_LIMITED else logging.DEBUG, "request refused",
                extra={"client": ctx.client_id, "uid": ctx.peer.uid, "type": rtype.name if rtype else None,
                       "status": status.name, "reason": getattr(e, "message", str(e))})
    except ossl.OsslError as e:
        status, payload = Status.CRYPTO_ERROR, b""
        log.warning("crypto error", extra={"client": ctx.client_id, "type": rtype.name if rtype else None,
                                           "reason": str(e)})
    except Exception:  # a bug: answer, log it, keep serving
        status, payload = Status.INTERNAL_ERROR, b""
        log.exception("internal error", extra={"client": ctx.client_id, "type": rtype.name if rtype else None})
    if log.isEnabledFor(logging.DEBUG):
        log.debug("request", extra={"client": ctx.client_id, "type": rtype.name if rtype else None,
                                    "status": status.name, "us": round((time.perf_counter() - started) * 1e6)})
    return pack_response(status, payload)
