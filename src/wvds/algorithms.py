"""The algorithm registry: every name, size and mapping of every algorithm, defined once.

The wire ids stay where the protocol defines them (wvds.protocol.constants.Algorithm); this module
says, per id, what each other vocabulary calls the algorithm and what OpenSSL, PKCS#11, the TPM and
the OpenSSL provider need to know about it. Every other table is derived from REGISTRY:

  vocabulary        example (ECDSA P-256)   used by
  Algorithm member  ECDSA_P256              the wire; the C header (WVDS_ALG_ECDSA_P256)
  cli_name          ecdsa-p256              wvdsctl arguments, keystore.native in config.json
  ossl_name         EC-P-256                wvds.ossl (PKey.algorithm), est_service's key.json
  keyref_name       ECDSA-P256              key reference files, the OpenSSL provider, est_service's config
  keytype / group   EC / P-256              OpenSSL key type and group (wvds.ossl)
  provider_group    prime256v1              the group as OpenSSL's EC keymgmt reports it (provider)
  pkcs11_curve      secp256r1               CKA_EC_PARAMS of a key generated in a PKCS#11 token
  tpm_curve         ecc256                  the TPM key template of a key generated in the TPM
  oid               1.2.840.10045.3.1.7     the key's OID (EC: its curve); the provider registers it as a name

The provider's C tables (src/c/provider/: keymgmt.c, keyref.c, provider.c, decoder.c, provider.h)
are generated from here by `python -m wvds.algorithms_c`; the build fails while they are stale.
"""
from __future__ import annotations

from dataclasses import dataclass

from wvds.protocol.constants import AES_256_KEY_SIZE, Algorithm


@dataclass(frozen=True)
class AlgorithmInfo:
    algorithm: Algorithm  # the wire id
    family: str  # "AES", "ML-DSA", "SLH-DSA", "ML-KEM" or "EC" (wvds.ossl's families)
    ossl_name: str = ""  # "": not an OpenSSL key (AES keys are plain bytes)
    keytype: str = ""  # OpenSSL key type (EVP_PKEY_CTX_new_from_name)
    group: str = ""  # EC: OpenSSL's group name for key generation and import
    provider_group: str = ""  # EC: the group name OpenSSL's EC keymgmt reports (the provider reports the same)
    pkcs11_curve: str = ""  # EC: named curve of CKA_EC_PARAMS
    tpm_curve: str = ""  # EC: tpm2-pytss template curve
    cli_aliases: tuple[str, ...] = ()  # short names wvdsctl accepts besides cli_name
    oid: str = ""  # ML-DSA/SLH-DSA/ML-KEM: the algorithm's OID (NIST CSOR); EC: the named curve's
    openssl_aliases: tuple[str, ...] = ()  # further names OpenSSL's own implementation registers ("MLDSA44")
    default_digest: str = ""  # ECDSA: the hash of HashAlg.DEFAULT and of est_service's signatures
    keyref_name: str = ""  # "": no key reference (only signing keys have one)
    est_device_key: bool = False  # est_service may enroll certificates for such a key
    key_size: int = 0  # AES: the key bytes
    public_size: int = 0  # raw public key (FIPS 203/204/205 encoding, uncompressed EC point)
    private_size: int = 0  # expanded private key (ML-*, SLH-DSA) or EC scalar
    seed_size: int = 0  # 0: no seed form
    signature_size: int = 0  # ML-DSA, SLH-DSA: exact; EC: the largest DER ECDSA-Sig-Value
    ciphertext_size: int = 0  # ML-KEM
    security_bits: int = 0
    security_category: int = 0  # NIST PQC category; 0 for classical algorithms

    @property
    def cli_name(self) -> str:
        """The lower-case form of the wire name: "ml-dsa-65", "ecdsa-p256", "aes-256-gcm"."""
        return self.algorithm.name.lower().replace("_", "-")

    @property
    def bits(self) -> int:
        """OpenSSL's "bits" of the key: the curve size for EC, the public key's bits otherwise."""
        return 8 * self.private_size if self.family == "EC" else 8 * self.public_size


def _slh_dsa() -> list[AlgorithmInfo]:
    """The twelve SLH-DSA sets (FIPS 205): n = 16/24/32; public PK.seed||PK.root (2n), private
    SK.seed||SK.prf||PK.seed||PK.root (4n), seed SK.seed||SK.prf||PK.seed (3n, key generation only)."""
    out = []
    for h in ("SHA2", "SHAKE"):
        for bits, n, category, sizes in ((128, 16, 1, (7856, 17088)), (192, 24, 3, (16224, 35664)),
                                         (256, 32, 5, (29792, 49856))):
            for v, size in zip("sf", sizes):
                name = f"SLH-DSA-{h}-{bits}{v}"
                oid = f"2.16.840.1.101.3.4.3.{20 + len(out)}"  # id-slh-dsa-sha2-128s .. id-slh-dsa-shake-256f
                out.append(AlgorithmInfo(Algorithm[f"SLH_DSA_{h}_{bits}{v.upper()}"], "SLH-DSA", name, name,
                                         keyref_name=name, oid=oid, public_size=2 * n, private_size=4 * n,
                                         seed_size=3 * n, signature_size=size, security_bits=bits,
                                         security_category=category))
    return out


def _ml_dsa(level: int, arc: int, public: int, private: int, signature: int, bits: int, category: int
            ) -> AlgorithmInfo:
    name = f"ML-DSA-{level}"
    return AlgorithmInfo(Algorithm[f"ML_DSA_{level}"], "ML-DSA", name, name, keyref_name=name, est_device_key=True,
                         oid=f"2.16.840.1.101.3.4.3.{arc}", openssl_aliases=(f"MLDSA{level}",),
                         public_size=public, private_size=private, seed_size=32, signature_size=signature,
                         security_bits=bits, security_category=category)


def _ml_kem(level: int, arc: int, public: int, private: int, ciphertext: int, bits: int, category: int
            ) -> AlgorithmInfo:
    name = f"ML-KEM-{level}"
    return AlgorithmInfo(Algorithm[f"ML_KEM_{level}"], "ML-KEM", name, name, oid=f"2.16.840.1.101.3.4.4.{arc}",
                         public_size=public, private_size=private, seed_size=64, ciphertext_size=ciphertext,
                         security_bits=bits, security_category=category)


def _ecdsa(size: int, provider_group: str, oid: str, signature: int) -> AlgorithmInfo:
    scalar = size // 8
    return AlgorithmInfo(Algorithm[f"ECDSA_P{size}"], "EC", f"EC-P-{size}", "EC", group=f"P-{size}",
                         provider_group=provider_group, pkcs11_curve=f"secp{size}r1", tpm_curve=f"ecc{size}",
                         cli_aliases=(f"p-{size}",), oid=oid, default_digest=f"SHA{size}",
                         keyref_name=f"ECDSA-P{size}", est_device_key=True, public_size=1 + 2 * scalar,
                         private_size=scalar, signature_size=signature, security_bits=size // 2)


REGISTRY: dict[Algorithm, AlgorithmInfo] = {i.algorithm: i for i in sorted((
    AlgorithmInfo(Algorithm.AES_256_GCM, "AES", cli_aliases=("aes-256",), key_size=AES_256_KEY_SIZE,
                  security_bits=256),
    # level, OID arc (RFC 9881, FIPS 203's NIST CSOR entries), public, private, signature/ciphertext, bits, category
    _ml_dsa(44, 17, 1312, 2560, 2420, 128, 2),
    _ml_dsa(65, 18, 1952, 4032, 3309, 192, 3),
    _ml_dsa(87, 19, 2592, 4896, 4627, 256, 5),
    _ml_kem(512, 1, 800, 1632, 768, 128, 1),
    _ml_kem(768, 2, 1184, 2400, 1088, 192, 3),
    _ml_kem(1024, 3, 1568, 3168, 1568, 256, 5),
    _ecdsa(256, "prime256v1", "1.2.840.10045.3.1.7", 72),
    _ecdsa(384, "secp384r1", "1.3.132.0.34", 104),
    *_slh_dsa(),
), key=lambda i: i.algorithm)}

assert set(REGISTRY) == set(Algorithm), "every wire algorithm needs a registry entry"

BY_OSSL_NAME: dict[str, AlgorithmInfo] = {i.ossl_name: i for i in REGISTRY.values() if i.ossl_name}
BY_CLI_NAME: dict[str, AlgorithmInfo] = {i.cli_name: i for i in REGISTRY.values()}


def info(algorithm: Algorithm) -> AlgorithmInfo:
    return REGISTRY[algorithm]


def ossl_names() -> dict[Algorithm, str]:
    """Wire id -> wvds.ossl name, for every algorithm OpenSSL holds as a key (all but AES)."""
    return {a: i.ossl_name for a, i in REGISTRY.items() if i.ossl_name}


def cli_names(algorithms=None, aliases: bool = False) -> dict[str, Algorithm]:
    """cli_name (and with `aliases` the short names too) -> wire id, of `algorithms` (default: all)."""
    return {name: a for a, i in REGISTRY.items() if algorithms is None or a in algorithms
            for name in (i.cli_name, *(i.cli_aliases if aliases else ()))}


def est_device_keys() -> list[AlgorithmInfo]:
    """The algorithms est_service enrolls device keys of, in wire order."""
    return [i for i in REGISTRY.values() if i.est_device_key]


def signing_keys() -> list[AlgorithmInfo]:
    """The algorithms a key reference (and so the OpenSSL provider) can name, in wire order."""
    return [i for i in REGISTRY.values() if i.keyref_name]
