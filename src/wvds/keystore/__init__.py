"""Key storage backends behind one interface (base.KeyStore).

`memory` keeps keys for the lifetime of the process only. The persistent
backends (encrypted file, TPM 2.0, PKCS#11 HSM) implement the same interface.
"""
from wvds.keystore.base import KeyRecord, KeyStore, KeyStoreError, open_keystore  # noqa: F401
