"""The TPM 2.0 binding: tpm2-tss's ESAPI through ctypes (esys) and the TPM structures in wire form (wire).

Our own, instead of tpm2-pytss, which imports pyca/cryptography and so would bring a
second, non-FIPS OpenSSL into the service (docs/binaries.md). Used by the TPM key
store (wvds.keystore.tpm) and the TPM engine (wvds.crypto_service.engines.tpm).
"""
