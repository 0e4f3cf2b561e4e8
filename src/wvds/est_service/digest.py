"""HTTP Digest access authentication (RFC 7616) for EST (RFC 7030 3.2.3 allows Basic or Digest).

Used when a server answers 401 with a Digest challenge: the request is sent once more with an
Authorization header computed from the challenge. SHA-256 and SHA-512-256 are computed by the FIPS
provider (hashlib on our libcrypto). MD5, which many deployed EST servers still offer alone, is not
an approved algorithm: it is used only where the server's config says `"allow_md5_digest": true`,
computed by CPython's own MD5 (outside the FIPS provider) for this authentication and nothing else.
"""
from __future__ import annotations

import hashlib
import os
import re

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')
# The parsing below is quadratic in a header's length (a regex retried at each position); a real
# challenge is well under 1 KiB, and the header may come before the server is authenticated (the
# bootstrap /cacerts fetch): longer values and more than MAX_CHALLENGE_HEADERS are not parsed.
MAX_CHALLENGE_CHARS = 2048
MAX_CHALLENGE_HEADERS = 8


class DigestError(Exception):
    """The challenge cannot be answered (unknown algorithm, MD5 not allowed, malformed)."""


def challenges(header_values: list[str]) -> list[tuple[str, dict[str, str]]]:
    """(scheme, parameters) of every WWW-Authenticate challenge, scheme lower-case."""
    out = []
    for value in header_values[:MAX_CHALLENGE_HEADERS]:
        if len(value) > MAX_CHALLENGE_CHARS:
            continue
        # Several challenges may share one header: split before each "<scheme> <param>=" run.
        for part in re.split(r",\s*(?=[A-Za-z][A-Za-z0-9_-]*\s+[A-Za-z0-9_-]+\s*=)", value):
            scheme, _, rest = part.strip().partition(" ")
            params = {}
            for m in _PARAM.finditer(rest):
                v = m.group(2)
                if v.startswith('"') and v.endswith('"') and len(v) >= 2:
                    v = re.sub(r"\\(.)", r"\1", v[1:-1])
                params[m.group(1).lower()] = v
            if scheme:
                out.append((scheme.lower(), params))
    return out


def describe(header_values: list[str]) -> str:
    """What the server asked for, for messages: 'Digest (realm "est", MD5), Basic (realm "est")'."""
    parts = []
    for scheme, p in challenges(header_values):
        detail = [f'realm "{p["realm"]}"'] if "realm" in p else []
        if scheme == "digest":
            detail.append(p.get("algorithm", "MD5"))
        parts.append(scheme.capitalize() + (f" ({', '.join(detail)})" if detail else ""))
    return ", ".join(parts) or "no WWW-Authenticate challenge"


def _hash(algorithm: str, allow_md5: bool):
    base = algorithm.upper().removesuffix("-SESS")
    if base == "SHA-256":
        return lambda b: hashlib.sha256(b).hexdigest()
    if base == "SHA-512-256":
        return lambda b: hashlib.new("sha512_256", b).hexdigest()
    if base == "MD5":
        if not allow_md5:
            raise DigestError('the server offers only MD5 Digest authentication, which is not FIPS-approved; '
                              'set "allow_md5_digest": true for this server to use it anyway')
        import _md5  # CPython's own MD5: the FIPS provider has none, by design
        return lambda b: _md5.md5(b).hexdigest()
    raise DigestError(f"unsupported Digest algorithm {algorithm!r}")


def authorization(params: dict[str, str], method: str, uri: str, username: str, password: str,
                  allow_md5: bool, cnonce: str | None = None) -> str:
    """The Authorization header value answering one Digest challenge (qop "auth", nc 1)."""
    if "nonce" not in params or "realm" not in params:
        raise DigestError("Digest challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5")
    h = _hash(algorithm, allow_md5)
    realm, nonce = params["realm"], params["nonce"]
    cnonce = cnonce or os.urandom(16).hex()
    ha1 = h(f"{username}:{realm}:{password}".encode())
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    ha2 = h(f"{method}:{uri}".encode())
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    fields = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
              f"algorithm={algorithm}"]
    if qops:
        if "auth" not in qops:
            raise DigestError(f"Digest qop {qops} offered; only \"auth\" is supported")
        response = h(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}".encode())
        fields += ["qop=auth", "nc=00000001", f'cnonce="{cnonce}"']
    else:  # RFC 2069 compatibility
        response = h(f"{ha1}:{nonce}:{ha2}".encode())
    fields.append(f'response="{response}"')
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)
