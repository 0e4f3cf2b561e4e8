"""STATUS: protocol and product versions, OpenSSL/FIPS state, algorithms, limits (UTF-8 JSON)."""
import json

from wvds.protocol.constants import RequestType
from wvds.protocol.payloads import Reader


def status(ctx, payload: bytes) -> bytes:
    Reader(payload).end()  # the request carries no payload
    return json.dumps(ctx.status(), sort_keys=True).encode()


HANDLERS = {RequestType.STATUS: status}
