"""Random bytes from the FIPS provider's DRBG."""
from wvds import ossl
from wvds.protocol.constants import RequestType
from wvds.protocol.payloads import RandomRequest


def random(ctx, payload: bytes) -> bytes:
    return ossl.random_bytes(RandomRequest.decode(payload).length)


HANDLERS = {RequestType.RANDOM: random}
