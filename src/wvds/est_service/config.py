"""config.json of est_service: loaded once at start-up, validated field by field.

Same conventions as crypto_service's config (wvds.config_fields): every problem is reported as
"<file>: <field.path>: <what is wrong>", all at once; unknown fields are errors
(usually typos). docs/est.md documents every field; this module is the authority
on defaults. Passwords are never in this file: it names files that hold them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from wvds.config_fields import Fields, absolute_path, load_json, shown
from wvds.est_service.errors import ConfigError
from wvds.est_service.keys import CONFIG_NAMES
from wvds.est_service.x509 import NAME_ATTRIBUTES, SAN_KINDS
from wvds.private_file import PrivateFileError, read_private

TLS_VERSIONS = ("1.2", "1.3")
# Hybrid ML-KEM groups OpenSSL 3.6's FIPS provider offers for TLS 1.3 (docs/est.md, "TLS").
DEFAULT_GROUPS_TLS13 = ("X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024")
DEFAULT_GROUPS_TLS12 = ("secp256r1", "secp384r1")  # TLS 1.2 has no hybrid groups
_LABEL = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$")  # one path segment (RFC 3986 pchar, unencoded)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


CURRENT = "current"  # auth.reenroll.client_cert: the current certificate, its key in crypto_service


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password_file: str | None = None
    # PEM certificate (chain) for TLS client authentication, or CURRENT (re-enrollment only): the
    # certificate being renewed, with its device key through the wvds provider (key.ref.pem)
    client_cert: str | None = None
    client_key: str | None = None  # the file credential's private key (PEM; a bootstrap credential); None with CURRENT

    @property
    def basic(self) -> bool:
        return self.username is not None

    @property
    def tls(self) -> bool:
        return self.client_cert is not None

    @property
    def current(self) -> bool:
        """TLS client authentication with the current certificate and its device key (wvds provider)."""
        return self.client_cert == CURRENT

    @property
    def any(self) -> bool:
        return self.basic or self.tls

    def password(self) -> str:
        """Read at use, never cached or logged. A trailing newline in the file is not part of it. The file
        is checked as every secret file is (wvds.private_file: regular, ours or root's, mode 0600 or less):
        est_service shares group wvds with every crypto client."""
        try:
            data = read_private(self.password_file, "EST password")
            return data.decode("utf-8").rstrip("\r\n")
        except PrivateFileError as e:
            raise ConfigError(f"password_file {e}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"password_file {self.password_file}: not UTF-8 text") from None


@dataclass(frozen=True)
class TlsSettings:
    min_version: str = "1.3"
    max_version: str = "1.3"
    groups: tuple[str, ...] = DEFAULT_GROUPS_TLS13


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int
    label: str | None = None
    trust_anchor: str | None = None
    bootstrap_ca_fingerprint: str | None = None  # lowercase hex SHA-256 of the CA certificate (DER)
    server_name: str | None = None
    tls: TlsSettings = TlsSettings()
    timeout_s: float = 30.0
    max_response_bytes: int = 1 << 20
    bootstrap: Credentials = Credentials()
    reenroll: Credentials = Credentials()
    allow_md5_digest: bool = False  # answer an MD5-only Digest challenge (not FIPS-approved; digest.py)

    def path(self, operation: str) -> str:
        return f"/.well-known/est/{self.label}/{operation}" if self.label else f"/.well-known/est/{operation}"


@dataclass(frozen=True)
class Retry:
    initial_s: float = 60.0
    max_s: float = 3600.0


@dataclass(frozen=True)
class Poll:
    default_s: float = 30.0  # when 202 carries no usable Retry-After
    min_s: float = 1.0
    max_s: float = 3600.0
    max_total_s: float = 86400.0
    max_polls: int = 100


@dataclass(frozen=True)
class CertificateSpec:
    name: str
    server: str
    key_algorithm: str = "ML-DSA-65"  # ossl name
    subject: tuple[tuple[str, str], ...] = ()
    san: dict[str, tuple[str, ...]] = field(default_factory=dict)
    key_label: str = ""
    rekey: bool = False
    honour_csrattrs: bool = True
    renew_at: float = 2 / 3
    jitter: float = 0.05
    retry: Retry = Retry()
    poll: Poll = Poll()
    bootstrap_on_expiry: bool = True
    clock_skew_s: float = 300.0
    strict_subject: bool = False  # refuse a certificate whose subject/SAN differ from the request


@dataclass(frozen=True)
class Config:
    path: str = "<defaults>"
    crypto_socket: str = "/run/wvds/crypto.sock"
    crypto_timeout_ms: int = 10_000
    openssl_config: str | None = None
    openssl_modules: str | None = None
    state_dir: str = "/var/lib/wvds/est"
    status_file: str = ""
    servers: dict[str, Server] = field(default_factory=dict)
    certificates: tuple[CertificateSpec, ...] = ()
    log_level: str = "info"


def _path_field(f: Fields, key: str, must_exist: bool = True) -> str | None:
    value = f.get(key, str, None, absolute_path, "must be an absolute path")
    if value is not None and must_exist and not os.path.exists(value):
        f.err(key, f"{value}: file not found")
    return value


def _credentials(f: Fields, reenroll: bool) -> Credentials:
    username = f.get("username", str, None, lambda v: v and ":" not in v, "must be non-empty, without ':'")
    password_file = _path_field(f, "password_file")
    if (username is None) != (password_file is None):
        f.errors.append(f"{f.location}: username and password_file go together")
    client_cert = f.get("client_cert", str, None)
    client_key = _path_field(f, "client_key")
    if client_cert == CURRENT:
        if not reenroll:
            f.err("client_cert", '"current" is for re-enrollment only (auth.reenroll): a first enrollment has no '
                                 'current certificate')
            client_cert = None
        elif client_key is not None:
            f.err("client_key", 'must be absent with client_cert "current": the key is the current certificate\'s '
                                'device key in crypto_service (used through the wvds provider)')
        client_key = None
    else:
        if client_cert is not None and not absolute_path(client_cert):
            f.err("client_cert", 'must be an absolute path (or "current" for re-enrollment)')
        elif client_cert is not None and not os.path.exists(client_cert):
            f.err("client_cert", f"{client_cert}: file not found")
        if (client_cert is None) != (client_key is None):
            f.errors.append(f"{f.location}: client_cert and client_key go together")
    f.unknown()
    return Credentials(username, password_file, client_cert, client_key)


def _server(name: str, f: Fields) -> Server:
    url = f.get("url", str, None)
    host, port = "", 443
    if url is None:
        f.err("url", "required (https://host[:port])")
    else:
        try:
            parts = urlsplit(url)
        except ValueError as e:  # e.g. "https://[::1" (unbalanced IPv6 brackets)
            f.err("url", f"invalid URL ({e})")
            parts = urlsplit("")
        try:
            port = parts.port or 443
        except ValueError:
            f.err("url", "invalid port")
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") or parts.query:
            f.err("url", "must be https://host[:port] (the /.well-known/est path is added; use 'label' for a label)")
        host = parts.hostname or ""
    label = f.get("label", str, None, lambda v: bool(_LABEL.match(v)) and v not in (
        "cacerts", "simpleenroll", "simplereenroll", "csrattrs", "serverkeygen", "fullcmc"),
        "must be one URL path segment and not an operation name")
    ta = _path_field(f, "trust_anchor")
    fp = f.get("bootstrap_ca_fingerprint", str, None)
    if fp is not None:
        norm = fp.lower().replace(":", "").removeprefix("sha256/").removeprefix("sha256:")
        if not re.fullmatch(r"[0-9a-f]{64}", norm):
            f.err("bootstrap_ca_fingerprint", "must be the SHA-256 of the CA certificate (64 hex digits, ':' allowed)")
            norm = None
        fp = norm
    if ta is None and fp is None:
        f.errors.append(f"{f.location}: needs trust_anchor (explicit) or bootstrap_ca_fingerprint (bootstrap mode)")
    server_name = f.get("server_name", str, None)
    t = f.sub("tls")
    vcheck = (lambda v: v in TLS_VERSIONS)
    min_v = t.get("min_version", str, "1.3", vcheck, "must be \"1.2\" or \"1.3\"")
    max_v = t.get("max_version", str, "1.3", vcheck, "must be \"1.2\" or \"1.3\"")
    if min_v > max_v:
        t.err("min_version", "is above max_version")
    default_groups = DEFAULT_GROUPS_TLS13 + (DEFAULT_GROUPS_TLS12 if min_v == "1.2" else ())
    groups = t.get("groups", list, list(default_groups),
                   lambda v: v and all(isinstance(g, str) and g and ":" not in g for g in v),
                   "must be a non-empty list of OpenSSL group names")
    t.unknown()
    timeout = f.get("timeout_s", (int, float), 30.0, lambda v: 0 < v <= 600, "must be 0 < t <= 600")
    max_bytes = f.get("max_response_bytes", int, 1 << 20, lambda v: 4096 <= v <= 64 << 20, "must be 4 KiB .. 64 MiB")
    auth = f.sub("auth")
    bootstrap = _credentials(auth.sub("bootstrap"), reenroll=False)
    reenroll = _credentials(auth.sub("reenroll"), reenroll=True)
    allow_md5 = auth.get("allow_md5_digest", bool, False)
    auth.unknown()
    f.unknown()
    if not reenroll.any:
        reenroll = Credentials(bootstrap.username, bootstrap.password_file)
    return Server(name, host, port, label, ta, fp, server_name, TlsSettings(min_v, max_v, tuple(groups)),
                  float(timeout), max_bytes, bootstrap, reenroll, allow_md5)


def _subject(f: Fields) -> tuple[tuple[str, str], ...]:
    f.seen.add("subject")
    raw = f.obj.get("subject")
    if raw is None:
        return ()
    pairs = list(raw.items()) if isinstance(raw, dict) else raw
    out = []
    if not isinstance(pairs, list):
        f.err("subject", "must be an object {\"CN\": ...} or a list of [attribute, value] pairs")
        return ()
    for item in pairs:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            f.err("subject", f"bad entry {shown(item)}: [attribute, value] of strings")
            continue
        key, value = item
        if key not in NAME_ATTRIBUTES and not re.fullmatch(r"\d+(\.\d+)+", key):
            f.err("subject", f"unknown attribute {key!r}; known: {', '.join(NAME_ATTRIBUTES)} or a dotted OID")
            continue
        if not value:
            f.err("subject", f"{key}: empty value")
            continue
        out.append((key, value))
    return tuple(out)


def _certificate(i: int, f: Fields, servers: dict[str, Server]) -> CertificateSpec:
    name = f.get("name", str, None, lambda v: bool(_NAME.match(v)), "must be 1..64 of [A-Za-z0-9_.-], not starting "
                                                                   "with '.', '_' or '-'")
    if name is None:
        f.err("name", "required")
    server = f.get("server", str, None)
    if server is None and len(servers) == 1:
        server = next(iter(servers))
    if server not in servers:
        f.err("server", f"must name one of the configured servers ({', '.join(servers) or 'none configured'})")
    alg_text = f.get("key_algorithm", str, "ML-DSA-65", lambda v: v in CONFIG_NAMES,
                     f"must be one of {', '.join(sorted(set(CONFIG_NAMES) - {'EC-P-256', 'EC-P-384'}))}")
    subject = _subject(f)
    s = f.sub("san")
    san = {}
    for kind in SAN_KINDS:
        values = s.get(kind, list, [])
        if not all(isinstance(v, str) and v for v in values):
            s.err(kind, "must be a list of non-empty strings")
            continue
        if kind == "ip":
            import ipaddress
            for v in values:
                try:
                    ipaddress.ip_address(v)
                except ValueError:
                    s.err(kind, f"{v!r} is not an IP address")
        if values:
            san[kind] = tuple(values)
    s.unknown()
    if not subject and not san:
        f.errors.append(f"{f.location}: needs a subject or a san (or both)")
    key_label = f.get("key_label", str, f"est:{name}", lambda v: 0 < len(v.encode()) <= 64, "must be 1..64 bytes")
    rekey = f.get("rekey", bool, False)
    honour = f.get("honour_csrattrs", bool, True)
    renew_at = f.get("renew_at", (int, float), 2 / 3, lambda v: 0.1 <= v <= 0.95, "must be 0.1 .. 0.95 (a fraction of "
                                                                                  "the certificate's lifetime)")
    jitter = f.get("jitter", (int, float), 0.05, lambda v: 0 <= v <= 0.25, "must be 0 .. 0.25 (fraction of lifetime)")
    if renew_at + jitter / 2 >= 1:
        f.err("jitter", "renew_at + jitter/2 must stay below 1")
    r = f.sub("retry")
    retry = Retry(float(r.get("initial_s", (int, float), 60.0, lambda v: 0.1 <= v <= 86400, "must be 0.1 .. 86400")),
                  float(r.get("max_s", (int, float), 3600.0, lambda v: 0.1 <= v <= 7 * 86400, "must be 0.1 .. 604800")))
    if retry.max_s < retry.initial_s:
        r.err("max_s", "is below initial_s")
    r.unknown()
    p = f.sub("poll")
    poll = Poll(float(p.get("default_s", (int, float), 30.0, lambda v: 0 < v <= 86400, "must be 0 < s <= 86400")),
                float(p.get("min_s", (int, float), 1.0, lambda v: 0 <= v <= 3600, "must be 0 .. 3600")),
                float(p.get("max_s", (int, float), 3600.0, lambda v: 0 < v <= 86400, "must be 0 < s <= 86400")),
                float(p.get("max_total_s", (int, float), 86400.0, lambda v: 0 < v <= 30 * 86400,
                            "must be 0 < s <= 2592000")),
                p.get("max_polls", int, 100, lambda v: 1 <= v <= 100_000, "must be 1 .. 100000"))
    if poll.max_s < poll.min_s:
        p.err("max_s", "is below min_s")
    p.unknown()
    fallback = f.get("bootstrap_on_expiry", bool, True)
    skew = f.get("clock_skew_s", (int, float), 300.0, lambda v: 0 <= v <= 86400, "must be 0 .. 86400")
    strict = f.get("strict_subject", bool, False)
    f.unknown()
    return CertificateSpec(name or f"#{i}", server or "", CONFIG_NAMES.get(alg_text, "ML-DSA-65"), subject, san,
                           key_label, rekey, honour, float(renew_at), float(jitter), retry, poll, fallback, float(skew),
                           strict)


def parse(doc: Any, path: str = "<config>") -> Config:
    errors: list[str] = []
    top = Fields(doc, "", errors)
    d = Config()
    cs = top.sub("crypto_service")
    socket_path = cs.get("socket", str, d.crypto_socket, absolute_path, "must be an absolute path")
    timeout_ms = cs.get("timeout_ms", int, d.crypto_timeout_ms, lambda v: 100 <= v <= 600_000, "must be 100 .. 600000")
    cs.unknown()
    ossl = top.sub("openssl")
    ossl_conf = _path_field(ossl, "config")
    ossl_modules = _path_field(ossl, "modules")
    ossl.unknown()
    state_dir = top.get("state_dir", str, d.state_dir, absolute_path, "must be an absolute path")
    status_file = top.get("status_file", str, os.path.join(state_dir, "status.json"), absolute_path,
                          "must be an absolute path")
    servers: dict[str, Server] = {}
    srv = top.sub("servers")
    for name in srv.obj:
        srv.seen.add(name)
        if not _NAME.match(name):
            srv.err(name, "server names are 1..64 of [A-Za-z0-9_.-]")
        servers[name] = _server(name, Fields(srv.obj[name], srv.where(name), errors))
    if not servers:
        errors.append("servers: configure at least one EST server")
    if any(s.reenroll.current for s in servers.values()) and len(socket_path.encode()) > 107:
        errors.append("crypto_service.socket: at most 107 bytes (it goes into the key reference that "
                      "client_cert \"current\" uses)")
    certs = []
    for i, c in enumerate(top.get("certificates", list, [])):
        certs.append(_certificate(i, Fields(c, f"certificates[{i}]", errors), servers))
    if not certs:
        errors.append("certificates: configure at least one certificate")
    names = [c.name for c in certs]
    for n in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"certificates: name {n!r} is used more than once")
    labels = [c.key_label for c in certs]  # a certificate retires the keys with its label that it does not use
    for n in sorted({n for n in labels if labels.count(n) > 1}):
        errors.append(f"certificates: key_label {n!r} is used by more than one certificate (each would retire "
                      "the other's key)")
    log = top.sub("log")
    level = log.get("level", str, "info", lambda v: v in ("debug", "info", "warning", "error"),
                    "must be one of debug, info, warning, error")
    log.unknown()
    top.unknown()
    if errors:
        raise ConfigError("\n".join(f"{path}: {e}" for e in errors))
    return Config(path, socket_path, timeout_ms, ossl_conf, ossl_modules, state_dir, status_file, servers,
                  tuple(certs), level)


def load(path: str) -> Config:
    return parse(load_json(path, ConfigError), path)
