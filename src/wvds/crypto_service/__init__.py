"""crypto_service: holds the keys and performs every cryptographic operation.

Follow a request through the tree: transport/ (shared memory, peer check) ->
crypto_service/session.py (one client) -> dispatch.py (header, rate limit,
routing) -> ops/<family>.py (one module per operation family) -> wvds.ossl
(the only code that talks to libcrypto). Keys live in keys.py, backed by
wvds.keystore.
"""
