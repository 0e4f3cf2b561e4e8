"""Moving request/response frames between clients and crypto_service.

linux_shm.py is the Linux implementation (Unix socket + SO_PEERCRED, private
sealed memfd, eventfd/futex doorbells); docs/transport.md is its contract and
maps every piece to its L4Re counterpart.
"""
