"""TPM 2.0 structures in their wire form (TPM 2.0 Part 2), built and read in Python.

Only what the TPM key store and engine send and read: object templates, the
sensitive part of a sealed object, PCR selections, session and signature schemes,
and the reading of a created key's public point and of an ECDSA signature. Every
value is big-endian; a TPM2B is a 16-bit size followed by that many bytes.
`wvds.tpm2.esys` hands these bytes to tpm2-tss's marshalling library (libtss2-mu),
which unmarshals them into its C structures, so a malformed blob is refused there.

The templates are byte-identical to what tpm2-tools' and tpm2-pytss's
"ecc256:aes128cfb" and "ecc256:null:null" produce (a test compares them): the
storage primary's name is pinned in store.json and must not change.
"""
from __future__ import annotations

import struct

# TPM2_ALG_ID
ALG = {"RSA": 0x0001, "SHA1": 0x0004, "HMAC": 0x0005, "AES": 0x0006, "KEYEDHASH": 0x0008,
       "SHA256": 0x000B, "SHA384": 0x000C, "SHA512": 0x000D, "NULL": 0x0010,
       "ECDSA": 0x0018, "ECC": 0x0023, "CFB": 0x0043}
ECC_CURVES = {"ecc256": 0x0003, "ecc384": 0x0004, "ecc521": 0x0005}  # TPM2_ECC_NIST_P256/P384/P521
PCR_BANKS = {"sha256": ALG["SHA256"], "sha384": ALG["SHA384"]}
MAX_AUTH = 64  # a TPM2B_AUTH holds at most sizeof(TPMU_HA)
PCR_SELECT_BYTES = 3  # PCR_SELECT_MIN: 24 PCRs, as tpm2-tools and tpm2-pytss send it (part of a policy digest)

# TPMA_OBJECT
FIXEDTPM, FIXEDPARENT, SENSITIVEDATAORIGIN = 0x2, 0x10, 0x20
USERWITHAUTH, RESTRICTED, DECRYPT, SIGN_ENCRYPT = 0x40, 0x10000, 0x20000, 0x40000
# tpm2_createprimary's default attributes (a restricted decryption key: a storage parent)
STORAGE_PRIMARY = RESTRICTED | DECRYPT | FIXEDTPM | FIXEDPARENT | SENSITIVEDATAORIGIN | USERWITHAUTH

# ESYS_TR (tss2_esys.h) and TPM2_RH / TPM2_ST / TPM2_SE / TPMA_SESSION (tss2_tpm2_types.h)
TR_NONE, TR_PASSWORD, TR_RH_OWNER = 0xFFF, 0x0FF, 0x101
RH_NULL = 0x40000007
ST_HASHCHECK = 0x8024
SE_HMAC, SE_POLICY, SE_TRIAL = 0x00, 0x01, 0x03
SESSION_CONTINUE, SESSION_DECRYPT, SESSION_ENCRYPT = 0x01, 0x20, 0x40

# TPM2_RC values the key store explains (format-one codes without their parameter/handle/session bits)
RC_FMT1 = 0x080
RC_AUTH_FAIL, RC_BAD_AUTH, RC_POLICY_FAIL, RC_INTEGRITY = 0x08E, 0x0A2, 0x09D, 0x09F
RC_LOCKOUT = 0x921
RC_INITIALIZE, RC_HANDLE, RC_REFERENCE_H0 = 0x100, 0x08B, 0x910

_U16, _U32 = struct.Struct(">H"), struct.Struct(">I")


class WireError(ValueError):
    """A TPM structure that cannot be read."""


def tpm2b(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise WireError("TPM2B longer than 65535 bytes")
    return _U16.pack(len(data)) + data


def u16(v: int) -> bytes:
    return _U16.pack(v)


def u32(v: int) -> bytes:
    return _U32.pack(v)


def sym_def(spec: str) -> bytes:
    """TPMT_SYM_DEF(_OBJECT): "aes128cfb" or "null"."""
    if spec == "null":
        return u16(ALG["NULL"])
    if spec == "aes128cfb":
        return u16(ALG["AES"]) + u16(128) + u16(ALG["CFB"])
    raise ValueError(f"symmetric definition {spec!r}")


def ecc_template(curve: str, attributes: int, symmetric: str = "null") -> bytes:
    """TPM2B_PUBLIC of an ECC key: no scheme (chosen per signature), no KDF, empty unique point."""
    area = (u16(ALG["ECC"]) + u16(ALG["SHA256"]) + u32(attributes) + tpm2b(b"")
            + sym_def(symmetric) + u16(ALG["NULL"]) + u16(ECC_CURVES[curve]) + u16(ALG["NULL"])
            + tpm2b(b"") + tpm2b(b""))
    return tpm2b(area)


def sealed_data_template(attributes: int, policy: bytes) -> bytes:
    """TPM2B_PUBLIC of a sealed data object: KEYEDHASH, no scheme, empty unique."""
    area = (u16(ALG["KEYEDHASH"]) + u16(ALG["SHA256"]) + u32(attributes) + tpm2b(policy)
            + u16(ALG["NULL"]) + tpm2b(b""))
    return tpm2b(area)


def sensitive_create(auth: bytes = b"", data: bytes = b"") -> bytes:
    """TPM2B_SENSITIVE_CREATE: the new object's auth value and, for a sealed object, its data."""
    return tpm2b(tpm2b(auth) + tpm2b(data))


def pcr_selection(bank: str, pcrs: list[int]) -> bytes:
    """TPML_PCR_SELECTION of one bank."""
    bits = bytearray(PCR_SELECT_BYTES)
    for i in pcrs:
        bits[i // 8] |= 1 << (i % 8)
    return u32(1) + u16(PCR_BANKS[bank]) + bytes([PCR_SELECT_BYTES]) + bytes(bits)


def empty_pcr_selection() -> bytes:
    return u32(0)


def ecdsa_scheme(digest: str) -> bytes:
    """TPMT_SIG_SCHEME: ECDSA with the digest the TPM signs ("SHA256", ...)."""
    return u16(ALG["ECDSA"]) + u16(ALG[digest])


def null_hashcheck() -> bytes:
    """TPMT_TK_HASHCHECK of the null hierarchy: signing a digest the TPM did not compute itself
    (allowed for keys that are not restricted)."""
    return u16(ST_HASHCHECK) + u32(RH_NULL) + tpm2b(b"")


class Reader:
    """Sequential reader of a marshalled structure; a short buffer raises WireError."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise WireError("TPM structure truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return _U16.unpack(self.take(2))[0]

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def tpm2b(self) -> bytes:
        return self.take(self.u16())


def tpm2b_content(data: bytes) -> bytes:
    """The bytes of a marshalled TPM2B (TPM2B_NAME, TPM2B_DIGEST, ...)."""
    r = Reader(data)
    out = r.tpm2b()
    if r.pos != len(data):
        raise WireError("trailing bytes after a TPM2B")
    return out


def ecc_public_point(public: bytes) -> bytes:
    """The uncompressed point (04 || X || Y) of a marshalled TPM2B_PUBLIC of a P-256 key."""
    r = Reader(tpm2b_content(public))
    if r.u16() != ALG["ECC"]:
        raise WireError("not an ECC public area")
    r.u16(), r.u32(), r.tpm2b()  # nameAlg, objectAttributes, authPolicy
    if r.u16() != ALG["NULL"]:  # symmetric: keyBits and mode follow
        r.u16(), r.u16()
    if r.u16() != ALG["NULL"]:  # scheme: its hash algorithm follows
        r.u16()
    if r.u16() != ECC_CURVES["ecc256"]:
        raise WireError("not a NIST P-256 key")
    if r.u16() != ALG["NULL"]:  # kdf
        r.u16()
    x, y = r.tpm2b(), r.tpm2b()
    if len(x) > 32 or len(y) > 32:
        raise WireError("P-256 coordinate longer than 32 bytes")
    return b"\x04" + x.rjust(32, b"\0") + y.rjust(32, b"\0")


def ecdsa_signature(signature: bytes) -> tuple[bytes, bytes]:
    """(r, s) of a marshalled TPMT_SIGNATURE of ECDSA."""
    r = Reader(signature)
    if r.u16() != ALG["ECDSA"]:
        raise WireError("not an ECDSA signature")
    r.u16()  # its hash algorithm
    return r.tpm2b(), r.tpm2b()
