"""Key reference files for the wvds OpenSSL provider (docs/provider.md, "Key reference files").

A reference names a key held by crypto_service -- key id, algorithm, socket -- and holds no key
material. Given to OpenSSL as the "private key" of a certificate (here: `load_cert_chain` for TLS
client authentication on re-enrollment), it makes the wvds provider forward every signature with
that key to crypto_service. est_service writes one per certificate generation (`key.ref.pem`
beside `cert.pem`, store.py), in the same byte format as the `wvds-keyref` tool:

    WvdsKeyReference ::= SEQUENCE {
        format     UTF8String,            -- "WVDS-KEYREF-1"
        keyId      INTEGER,               -- 1 .. 2^32-1
        algorithm  UTF8String,            -- "ML-DSA-44/65/87" | "ECDSA-P256" | "ECDSA-P384"
        socket     UTF8String OPTIONAL }  -- at most 107 bytes (always written here)

in DER, base64 in 64-character lines under the label "WVDS KEY REFERENCE", preceded by a
one-line comment (RFC 7468 explanatory text).
"""
from __future__ import annotations

import base64

from wvds.algorithms import est_device_keys

FORMAT = "WVDS-KEYREF-1"
LABEL = "WVDS KEY REFERENCE"
MAX_SOCKET = 107  # bytes: sun_path minus the terminating NUL
# est_service's algorithm names (key.json, ossl names) -> the reference's (from the algorithm registry)
ALGORITHMS = {i.ossl_name: i.keyref_name for i in est_device_keys()}
FILE_NAME = "key.ref.pem"


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element with a definite, minimal length (our contents stay below 64 KiB)."""
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + content


def _der_integer(value: int) -> bytes:
    """Minimal two's complement content of a positive INTEGER."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return b"\x00" + raw if raw[0] & 0x80 else raw


def reference_algorithm(algorithm: str) -> str:
    """The reference's name for an est_service key algorithm ("EC-P-256" -> "ECDSA-P256")."""
    if algorithm in ALGORITHMS.values():
        return algorithm
    try:
        return ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"no key reference for a {algorithm} key") from None


def to_der(key_id: int, algorithm: str, socket_path: str) -> bytes:
    if not 1 <= key_id <= 0xFFFFFFFF:
        raise ValueError(f"key id {key_id} out of range 1..2^32-1")
    alg = reference_algorithm(algorithm)
    sock = socket_path.encode()
    if not sock or len(sock) > MAX_SOCKET or b"\0" in sock:
        raise ValueError(f"socket path {socket_path!r}: 1..{MAX_SOCKET} bytes without NUL")
    body = (_tlv(0x0C, FORMAT.encode()) + _tlv(0x02, _der_integer(key_id)) + _tlv(0x0C, alg.encode())
            + _tlv(0x0C, sock))
    return _tlv(0x30, body)


def to_pem(key_id: int, algorithm: str, socket_path: str) -> str:
    der = to_der(key_id, algorithm, socket_path)
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    comment = (f"WvdS crypto_service key reference (no key material): key 0x{key_id:08x}, "
               f"{reference_algorithm(algorithm)}, socket {socket_path}")
    return "\n".join([comment, f"-----BEGIN {LABEL}-----", *lines, f"-----END {LABEL}-----"]) + "\n"
