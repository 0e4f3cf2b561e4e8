"""One module per operation family. Each exposes HANDLERS: request type -> handler(ctx, payload) -> payload."""
from wvds.crypto_service.ops import aead, kem, keymgmt, random, signatures, status

HANDLERS = {**aead.HANDLERS, **signatures.HANDLERS, **kem.HANDLERS, **random.HANDLERS, **keymgmt.HANDLERS,
            **status.HANDLERS}
