"""pyca/cryptography (OpenSSL 4.0 inside, statically linked) as the independent side of cross-checks.

pyca 50 has ML-DSA-44/65/87 and ML-KEM-768/1024 — no ML-KEM-512.
"""
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, mlkem

MLDSA = {"ML-DSA-44": (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey),
         "ML-DSA-65": (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey),
         "ML-DSA-87": (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey)}
MLKEM = {"ML-KEM-768": (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey),
         "ML-KEM-1024": (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey)}
CURVES = {"EC-P-256": ec.SECP256R1(), "EC-P-384": ec.SECP384R1()}
