"""wvds.ossl: the only code in the product that talks to libcrypto (OpenSSL 3.6 + FIPS provider).

Call `load()` once per process; afterwards every operation runs in the FIPS
provider of the default library context (default property query ``fips=yes``).
Modules, one job each:

  _lib        finding libcrypto, every C prototype, the error queue, cached fetches
  _params     OSSL_PARAM arrays;  _checks  input validation before any C call
  errors      OsslError, AuthenticationError, InvalidInputError
  fips        load(), FipsInfo
  rand        random_bytes                 aead        AES-256-GCM (provider-generated nonce)
  kdf         hkdf_sha256, pbkdf2_sha256   keys        PKey: generate, import, export, SPKI DER
  signatures  ML-DSA, ECDSA                kem         ML-KEM

Every failure raises OsslError (with OpenSSL's reason text); malformed input is
refused in Python (InvalidInputError, also an OsslError and a ValueError) before
it reaches C. Nothing here loads libcrypto at import time.
"""
from wvds.ossl.aead import aes_gcm_decrypt, aes_gcm_encrypt, fast_path_entry_points
from wvds.ossl.errors import AuthenticationError, InvalidInputError, OsslError
from wvds.ossl.fips import FipsInfo, load
from wvds.ossl.kdf import hkdf_sha256, pbkdf2_sha256
from wvds.ossl.kem import mlkem_decapsulate, mlkem_encapsulate
from wvds.ossl.keys import (ALGORITHMS, PKey, generate_key, key_from_private, key_from_public, key_from_seed,
                            public_key_der)
from wvds.ossl.rand import random_bytes
from wvds.ossl.signatures import (ecdsa_digest, ecdsa_sign, ecdsa_verify, mldsa_sign, mldsa_verify,
                                  signature_algorithm, slhdsa_sign, slhdsa_verify)

__all__ = [
    "OsslError", "AuthenticationError", "InvalidInputError", "FipsInfo", "load", "random_bytes",
    "aes_gcm_encrypt", "aes_gcm_decrypt", "fast_path_entry_points", "hkdf_sha256", "pbkdf2_sha256",
    "ALGORITHMS", "PKey", "generate_key", "key_from_seed", "key_from_private", "key_from_public", "public_key_der",
    "mldsa_sign", "mldsa_verify", "slhdsa_sign", "slhdsa_verify", "signature_algorithm",
    "ecdsa_digest", "ecdsa_sign", "ecdsa_verify", "mlkem_encapsulate", "mlkem_decapsulate",
]
