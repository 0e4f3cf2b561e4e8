"""Key storage backends behind one interface (base.KeyStore), chosen by config.json `keystore.backend`.

`memory` keeps keys for the lifetime of the process only. The persistent
backends - `file` (encrypted key files, the default for products), `tpm` (KEK
sealed by a TPM 2.0) and `pkcs11` (KEK inside an HSM) - share one on-disk
format (fileformat.py) and differ in where the key-encryption key lives.
docs/keystore.md describes every field.
"""
from wvds.keystore.base import KeyRecord, KeyStore, KeyStoreError, open_keystore  # noqa: F401
