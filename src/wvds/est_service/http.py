"""The EST transport: HTTPS requests to one server with Python's ssl module on our OpenSSL.

TLS: 1.3 only by default (1.2 allowed by config for older servers), key exchange
restricted to the configured groups -- by default the hybrid ML-KEM groups the
FIPS provider offers (see docs/est.md) -- and the server authenticated against the
trust anchors (hostname checked). The one exception is the bootstrap fetch of
/cacerts (RFC 7030 4.1.1), which runs unauthenticated and never carries
credentials; its result is only accepted after the fingerprint check.

Authentication: HTTP Basic (RFC 7617, only ever on an authenticated connection)
and/or a TLS client certificate (`ClientIdentity`): from files (a bootstrap credential),
or, for re-enrollment, the current certificate with a wvds key reference as its "private
key" -- OpenSSL's wvds provider then has crypto_service make the TLS signature, and the
device key never enters this process (docs/provider.md, docs/est.md).

A `Cancel` token lets the daemon abort a request in flight at SIGTERM: it shuts
the socket down from another thread, the blocked read returns, `Cancelled` is raised.
Redirects are not followed (RFC 7030 leaves them optional; a redirect to another
host would move the credentials).
"""
from __future__ import annotations

import base64
import datetime as dt
import email.utils
import http.client
import logging
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Callable

from wvds.est_service import digest
from wvds.est_service.config import Credentials, Server
from wvds.est_service.errors import AuthError, Cancelled, ConfigError, HttpStatusError, TransportError
from wvds.private_file import PrivateFileError, open_private

log = logging.getLogger("wvds.est.http")

_TLS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class Cancel:
    """Shared by the daemon and its requests: cancel() aborts whatever is in flight, for good."""

    def __init__(self):
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()

    def cancel(self) -> None:
        self.event.set()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                socket.socket.shutdown(s, socket.SHUT_RDWR)  # the plain socket call, also for an SSLSocket
            except OSError:
                pass

    def wait(self, seconds: float) -> None:
        """Sleep, unless cancelled (then raise Cancelled at once)."""
        if self.event.wait(max(0.0, seconds)):
            raise Cancelled("stopping")

    def check(self) -> None:
        if self.event.is_set():
            raise Cancelled("stopping")

    def track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.add(s)
        if self.event.is_set():
            self.cancel()

    def untrack(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.discard(s)


@dataclass
class Response:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes
    tls_version: str
    group: str

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(frozen=True)
class ClientIdentity:
    """A TLS client certificate and its key, as files OpenSSL loads."""
    cert_file: str  # PEM: the certificate, then its intermediates
    key_file: str  # PEM: a private key, or a WVDS KEY REFERENCE (the key stays in crypto_service)
    what: str  # for messages: "certificate /etc/...", "current certificate (generation 7, ...)"
    # For a key reference, called with what failed ("OpenSSL could not load ...", "the TLS handshake
    # failed"): raises (KeyServiceError, ...) with the reason the key is unusable, if it finds one.
    # OpenSSL's own reason does not reach Python (ssl shows "[SSL] PEM lib").
    check_key: Callable[[str], None] | None = None

    @classmethod
    def from_files(cls, credentials: Credentials) -> "ClientIdentity":
        return cls(credentials.client_cert, credentials.client_key, f"certificate {credentials.client_cert}")


def tls_context(server: Server, anchors_pem: str | None, identity: ClientIdentity | None) -> ssl.SSLContext:
    """Client context: versions, groups, trust anchors (None = bootstrap, unauthenticated), client certificate."""
    from wvds.ossl import tls as ossl_tls
    from wvds.ossl.errors import OsslError
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _TLS[server.tls.min_version]
    ctx.maximum_version = _TLS[server.tls.max_version]
    if anchors_pem is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cadata=anchors_pem)
        # A configured anchor may be an intermediate CA: trust it as an anchor, as chain.py does.
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        ossl_tls.set_groups(ctx, list(server.tls.groups))
    except OsslError as e:
        raise TransportError(f"TLS groups {':'.join(server.tls.groups)}: {e}") from None
    if identity is not None:
        try:
            _load_identity(ctx, identity)
            failure = None
        except (ssl.SSLError, OSError) as e:
            failure = e
        if failure is not None:
            if identity.check_key is not None:
                identity.check_key(f"OpenSSL could not load {identity.key_file}")  # key gone, service down, ...
            raise TransportError(f"cannot load the TLS client {identity.what} (key {identity.key_file}): "
                                 f"{failure}")
    return ctx


def _load_identity(ctx: ssl.SSLContext, identity: ClientIdentity) -> None:
    if identity.check_key is not None:  # a key reference: no secret in the file, the key is in crypto_service
        ctx.load_cert_chain(identity.cert_file, identity.key_file)
        return
    # A private key in a file: checked as every secret file (regular, ours or root's, no group/other
    # access), and OpenSSL reads the very file that was checked (/proc/self/fd of the checked descriptor).
    try:
        fd = open_private(identity.key_file, "TLS client key")
    except PrivateFileError as e:
        raise ConfigError(f"client_key {e}") from None
    try:
        ctx.load_cert_chain(identity.cert_file, f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


class EstHttp:
    """Requests to one EST server with one set of credentials; a fresh connection per request."""

    def __init__(self, server: Server, anchors_pem: str | None, credentials: Credentials | None, cancel: Cancel,
                 identity: ClientIdentity | None = None):
        """identity: the TLS client certificate; required when credentials say client_cert "current"
        (the caller resolves it to the current generation's files), derived from file credentials."""
        self.server, self.cancel = server, cancel
        self.authenticated = anchors_pem is not None
        self.credentials = credentials if self.authenticated else None
        self.identity = None
        if self.credentials is not None and self.credentials.tls:
            if self.credentials.current:
                if identity is None:
                    raise TransportError('client_cert "current": no current certificate to authenticate with')
                self.identity = identity
            else:
                self.identity = ClientIdentity.from_files(self.credentials)
        self.ctx = tls_context(server, anchors_pem, self.identity)

    def request(self, method: str, operation: str, body: bytes | None = None,
                content_type: str | None = None) -> Response:
        """One request; with HTTP credentials, Basic is sent at once and a Digest challenge in a 401 is
        answered by sending the request once more (RFC 7616; a fresh connection, as every request)."""
        path = self.server.path(operation)
        creds = self.credentials if self.credentials is not None and self.credentials.basic else None
        authorization = password = None
        if creds is not None:
            password = creds.password()  # read once per request, never kept
            token = base64.b64encode(f"{creds.username}:{password}".encode()).decode()
            authorization = f"Basic {token}"
        result = self._send(method, path, operation, body, content_type, authorization)
        if result.status == 401 and creds is not None:
            offered = result.headers.get_all("WWW-Authenticate") or []
            digest_params = next((p for scheme, p in digest.challenges(offered) if scheme == "digest"), None)
            if digest_params is not None:
                try:
                    authorization = digest.authorization(digest_params, method, path, creds.username,
                                                         password, self.server.allow_md5_digest)
                except digest.DigestError as e:
                    raise AuthError(401, operation, f"{e} (the server asks for {digest.describe(offered)})") from None
                result = self._send(method, path, operation, body, content_type, authorization)
        return result

    def _send(self, method: str, path: str, operation: str, body: bytes | None, content_type: str | None,
              authorization: str | None) -> Response:
        self.cancel.check()
        headers = {"Host": f"{self.server.host}:{self.server.port}", "User-Agent": "wvds-est-service",
                   "Accept": "*/*", "Connection": "close"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
            headers["Content-Transfer-Encoding"] = "base64"  # RFC 8951: ignored by current servers, wanted by old
        if authorization is not None:
            headers["Authorization"] = authorization
        sock = None
        try:
            raw = socket.create_connection((self.server.host, self.server.port), timeout=self.server.timeout_s)
            self.cancel.track(raw)
            try:
                sni = self.server.server_name or self.server.host
                sock = self.ctx.wrap_socket(raw, server_hostname=sni)
            except BaseException:
                self.cancel.untrack(raw)
                raw.close()
                raise
            self.cancel.untrack(raw)
            self.cancel.track(sock)
            group = _group(sock)
            conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=self.server.timeout_s)
            conn.sock = sock
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read(self.server.max_response_bytes + 1)
            if len(data) > self.server.max_response_bytes:
                raise TransportError(f"{operation}: response larger than {self.server.max_response_bytes} bytes")
            result = Response(resp.status, resp.reason, resp.headers, data, sock.version() or "", group)
        except ssl.SSLCertVerificationError as e:
            self._cancelled()
            raise TransportError(f"{operation}: server certificate not trusted: {e.verify_message}") from None
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            self._cancelled()
            if isinstance(e, ssl.SSLError) and self.identity is not None and self.identity.check_key is not None:
                self.identity.check_key("the TLS handshake failed")  # e.g. the key was deleted since
            raise TransportError(f"{operation}: {type(e).__name__}: {e}") from None
        finally:
            if sock is not None:
                self.cancel.untrack(sock)
                sock.close()
        log.debug("EST response", extra={"operation": operation, "status": result.status, "tls": result.tls_version,
                                         "group": result.group, "bytes": len(result.body),
                                         "content_type": result.content_type})
        return result

    def _cancelled(self) -> None:
        if self.cancel.cancelled:
            raise Cancelled("stopping")


def _group(sock: ssl.SSLSocket) -> str:
    from wvds.ossl import tls as ossl_tls
    try:
        return ossl_tls.negotiated_group(sock)
    except Exception:  # diagnostics only
        return ""


def raise_for_status(resp: Response, operation: str, ok: tuple[int, ...]) -> None:
    if resp.status in ok:
        return
    detail = _error_text(resp)
    if resp.status == 401:  # say what the server asked for: the fix is in the credentials it wants
        raise AuthError(401, operation, f"{detail}; the server asks for "
                                        f"{digest.describe(resp.headers.get_all('WWW-Authenticate') or [])}")
    if resp.status == 403:
        raise AuthError(resp.status, operation, detail)
    if 300 <= resp.status < 400:
        detail = f"redirect to {resp.header('Location')!r} not followed"
    raise HttpStatusError(resp.status, operation, detail)


def _error_text(resp: Response) -> str:
    """The first line of a human-readable error body, for logs (RFC 7030: text/plain or none)."""
    if resp.content_type not in ("", "text/plain", "text/html", "application/problem+json"):
        return resp.reason
    text = resp.body[:200].decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text or resp.reason


def retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    v = value.strip()
    if v.isascii() and v.isdigit():  # ("²".isdigit() is true; int() refuses it)
        return float(v) if len(v) <= 12 else float("inf")  # (the caller clamps)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a year past datetime's range
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())
