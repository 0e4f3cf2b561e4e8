"""One enrollment or re-enrollment of one certificate, end to end.

    trust    (bootstrap by fingerprint if needed) /cacerts -> anchors, CA certificates
    policy   /csrattrs -> what the server wants in the CSR (optional, failures tolerated)
    key      the current key (renewal) or a new one in crypto_service (first enrollment, rekey,
             expiry fallback, a key type the server demands, or the old key gone)
    CSR      built here, signed by crypto_service, self-checked; saved as `pending` *before* it
             is sent, so a restart resends the identical CSR
    send     /simpleenroll or /simplereenroll; on 202 wait Retry-After (bounded) and resend.
             Re-enrollment may authenticate with the current certificate (client_cert "current"):
             its generation's key.ref.pem is the TLS "private key", crypto_service signs
    verify   the answer must contain a certificate for exactly our public key, chaining to a
             trust anchor, valid now and fit for use (issued.py); a subject or subjectAltName
             the CA rewrote is accepted and logged (refused with `strict_subject`)
    commit   new generation made current atomically (store.py); only then is the pending
             request cleared and the superseded key scheduled for deletion

Any failure leaves the current generation untouched. The caller (renewal.py)
records the outcome and schedules the next attempt.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
import time
from dataclasses import dataclass

from asn1crypto import x509 as ax509

from wvds.est_service import asn1, chain, csrattrs, issued, pkcs7
from wvds.est_service.cacerts import TrustStore
from wvds.est_service.config import CertificateSpec, Config, Credentials, Server
from wvds.est_service.csr import CsrContent, build as build_csr
from wvds.est_service.errors import (AuthError, EstError, HttpStatusError, KeyServiceError, PendingError,
                                     ProtocolError, TransportError, ValidationError)
from wvds.est_service.http import Cancel, ClientIdentity, EstHttp, raise_for_status, retry_after
from wvds.est_service.keys import BY_ID, DeviceKey, KeyService
from wvds.est_service.state import CertState, Pending
from wvds.est_service.store import CertStore, Credential
from wvds.est_service.x509 import Cert, build_name, build_san, now as utcnow
from wvds.protocol.constants import KeyUsage

log = logging.getLogger("wvds.est.enroll")

PKCS10 = "application/pkcs10"


@dataclass
class Outcome:
    credential: Credential
    operation: str
    rekeyed: bool
    polls: int


class Enrollment:
    """Everything one attempt for one certificate needs."""

    def __init__(self, cfg: Config, spec: CertificateSpec, keysvc: KeyService, store: CertStore,
                 state: CertState, state_path: str, cancel: Cancel):
        self.cfg, self.spec, self.keys, self.store = cfg, spec, keysvc, store
        self.state, self.state_path, self.cancel = state, state_path, cancel
        self.server: Server = cfg.servers[spec.server]
        self.trust = TrustStore(self.server, os.path.join(cfg.state_dir, "servers", self.server.name),
                                spec.clock_skew_s)
        self.log = {"certificate": spec.name, "server": self.server.name}
        self.current: Credential | None = None  # the installed pair when the attempt started

    # --- trust ------------------------------------------------------------------------------
    def refresh_trust(self) -> None:
        when = utcnow()
        if self.trust.needs_bootstrap:
            http = EstHttp(self.server, None, None, self.cancel)  # unauthenticated: no credentials go out
            resp = http.request("GET", "cacerts")
            raise_for_status(resp, "cacerts (bootstrap)", (200,))
            certs = pkcs7.certs_only(pkcs7.decode_body(resp.body, "cacerts"), "cacerts")
            self.trust.bootstrap(certs, when)
        try:
            resp = self.http(None).request("GET", "cacerts")
            raise_for_status(resp, "cacerts", (200,))
            certs = pkcs7.certs_only(pkcs7.decode_body(resp.body, "cacerts"), "cacerts")
            self.trust.accept_cacerts(certs, when)
        except (TransportError, HttpStatusError, ProtocolError) as e:
            if not self.trust.ca_certs:
                raise
            log.warning("cannot refresh /cacerts; using the CA certificates from the last refresh",
                        extra={**self.log, "error": str(e)})

    def http(self, credentials: Credentials | None) -> EstHttp:
        identity = self.current_identity() if credentials is not None and credentials.current else None
        return EstHttp(self.server, self.trust.tls_anchors_pem(utcnow()), credentials, self.cancel, identity)

    # --- TLS client authentication with the current certificate ----------------------------------
    def current_identity(self) -> ClientIdentity:
        """The current generation as TLS client credential: chain.pem and its key reference (key.ref.pem),
        which the wvds provider turns into a key whose signatures crypto_service makes."""
        cur = self.current
        if cur is None:
            raise EstError('re-enrollment with client_cert "current" needs a current certificate, and there is none')
        ref = self.store.key_reference(cur, self.cfg.crypto_socket)
        log.debug("TLS client certificate: the current one, its key in crypto_service",
                  extra={**self.log, "generation": cur.generation, "key_id": cur.key_id, "key_reference": ref})
        return ClientIdentity(os.path.join(self.store.generation_dir(cur.generation), "chain.pem"), ref,
                              f"current certificate (generation {cur.generation}, serial {cur.cert.serial_hex})",
                              check_key=lambda failed: self.check_current_key(cur, failed))

    def check_current_key(self, cur: Credential, tls_failure: str | None = None) -> None:
        """Raise KeyServiceError if the current certificate's device key cannot sign for TLS: gone from
        crypto_service, another type than key.json says, no SIGN usage, or the service unreachable.
        tls_failure: what OpenSSL already failed to do with the key; if crypto_service finds nothing
        wrong, check that the wvds provider is loaded at all."""
        what = (f'TLS client authentication with the current certificate (client_cert "current", generation '
                f'{cur.generation})' + (f": {tls_failure}" if tls_failure else "") +
                f": its device key {cur.key_id:#010x}")
        try:
            d = self.keys.describe(cur.key_id)
        except KeyServiceError as e:
            if e.key_missing:
                raise KeyServiceError(f"{what} is gone from crypto_service (KEY_NOT_FOUND: deleted, or lost with a "
                                      f"memory key store); the current certificate stays installed but cannot be "
                                      f"renewed this way", key_missing=True) from None
            raise KeyServiceError(f"{what} cannot be used: {e}") from None
        if BY_ID.get(d.algorithm) != cur.key_algorithm:
            raise KeyServiceError(f"{what} is {d.algorithm.name} in crypto_service, not {cur.key_algorithm}")
        if not d.usage & int(KeyUsage.SIGN):
            raise KeyServiceError(f"{what} may not sign (usage {d.usage:#x})")
        if tls_failure:
            from wvds.ossl.fips import active_providers
            if "wvds" not in active_providers():
                raise TransportError(f"{what} exists, but the wvds OpenSSL provider is not loaded: openssl.config "
                                     f"must activate it (wvds = wvds_sect, docs/provider.md)")

    def fetch_policy(self) -> csrattrs.CsrPolicy | None:
        if not self.spec.honour_csrattrs:
            return None
        try:
            resp = self.http(None).request("GET", "csrattrs")
            if resp.status in (204, 404):
                return None
            raise_for_status(resp, "csrattrs", (200,))
            if not resp.body.strip():
                return None
            policy = csrattrs.parse(pkcs7.decode_body(resp.body, "csrattrs"))
        except (TransportError, HttpStatusError, ProtocolError) as e:
            log.warning("csrattrs unavailable; enrolling with the configured content", extra={**self.log,
                                                                                                "error": str(e)})
            return None
        if policy.ignored:
            log.info("csrattrs: attributes we do not handle were ignored", extra={**self.log, "oids": policy.ignored})
        if policy.challenge_password:
            log.warning("csrattrs asks for challengePassword (tls-unique PoP linking), which est_service does not "
                        "provide; the server may reject the request", extra=self.log)
        return policy

    # --- CSR content --------------------------------------------------------------------------
    def content(self, current: Credential | None, reenroll: bool, policy: csrattrs.CsrPolicy | None) -> CsrContent:
        if reenroll and current is not None:
            # RFC 7030 4.2.2: subject and subjectAltName identical to the current certificate
            subject = current.cert.subject
            san = current.cert.san_der
        else:
            subject = build_name(list(self.spec.subject))
            san = build_san({k: list(v) for k, v in self.spec.san.items()})
        extensions: list[tuple[str, bool, bytes]] = []
        if san is not None:
            extensions.append((asn1.SUBJECT_ALT_NAME, False, san))
        if policy is not None:
            if policy.subject_template is not None and not reenroll:
                subject = self._subject_from_template(policy.subject_template)
            elif policy.subject_types and not reenroll:
                missing = [t for t in policy.subject_types if t not in self._configured_subject_oids()]
                if missing:
                    log.warning("csrattrs asks for subject attributes the config does not have",
                                extra={**self.log, "oids": missing})
            for oid, critical, value in policy.extensions:
                if any(oid == e[0] for e in extensions):
                    continue  # ours (subjectAltName) wins: it identifies the device
                if value is None:
                    value = csrattrs.default_extension_value(oid)
                    if value is None:
                        log.warning("csrattrs asks for an extension we cannot fill", extra={**self.log, "oid": oid})
                        continue
                extensions.append((oid, critical, value))
        return CsrContent(subject, extensions)

    def _configured_subject_oids(self) -> set[str]:
        from wvds.est_service.x509 import NAME_ATTRIBUTE_OIDS
        return {NAME_ATTRIBUTE_OIDS.get(k, k) for k, _v in self.spec.subject}

    def _subject_from_template(self, template: list[tuple[str, str | None]]) -> ax509.Name:
        from wvds.est_service.x509 import NAME_ATTRIBUTE_OIDS
        configured = {NAME_ATTRIBUTE_OIDS.get(k, k): v for k, v in self.spec.subject}
        rdns = []
        for oid, dictated in template:
            if dictated is not None:
                rdns.append(ax509.RelativeDistinguishedName([ax509.NameTypeAndValue(
                    {"type": oid, "value": _attribute_value(oid, dictated)})]))
            elif oid in configured:
                rdns.append(build_name([(oid, configured[oid])]).chosen[0])
            else:
                log.warning("csrattrs template wants a subject attribute the config does not have",
                            extra={**self.log, "oid": oid})
        if not rdns:
            return build_name(list(self.spec.subject))
        return ax509.Name(name="", value=ax509.RDNSequence(rdns))

    # --- the attempt ------------------------------------------------------------------------------
    def save_state(self) -> None:
        self.state.save(self.state_path)

    def run(self) -> Outcome:
        spec, st = self.spec, self.state
        current = self.current = self.store.current()
        when = utcnow()
        self.refresh_trust()
        pending = st.pending
        if pending is not None and time.time() - pending.started > spec.poll.max_total_s:
            log.warning("dropping a pending request older than poll.max_total_s", extra=self.log)
            self._drop_pending()
            pending = None
        if pending is not None and not pending.csr_b64:
            # The previous run stopped between generating the key and saving its CSR: nothing was
            # sent, so start over (a key generated for it is retired like any abandoned one).
            log.info("the previous run stopped before its CSR was saved: starting a new request", extra=self.log)
            self._drop_pending()
            pending = None
        if pending is None:
            pending = self._new_request(current, when)
        else:
            log.info("resuming the pending request with the identical CSR",
                     extra={**self.log, "operation": pending.operation, "polls": pending.polls})
        creds = self.server.bootstrap if pending.credentials == "bootstrap" else self.server.reenroll
        csr_der = base64.b64decode(pending.csr_b64)
        certs = self._send(pending, csr_der, creds)
        return self._verify_and_commit(pending, csr_der, certs, current)

    def _new_request(self, current: Credential | None, when: dt.datetime) -> Pending:
        spec = self.spec
        expired = current is not None and current.cert.not_after <= when
        bootstrap_ok = self.server.bootstrap.any
        if current is None:
            operation, cred_name = "simpleenroll", "bootstrap"
        elif expired and spec.bootstrap_on_expiry and bootstrap_ok:
            log.warning("current certificate has expired: enrolling anew with the bootstrap credentials",
                        extra=self.log)
            operation, cred_name = "simpleenroll", "bootstrap"
        else:
            operation, cred_name = "simplereenroll", "reenroll"
        if cred_name == "reenroll" and self.server.reenroll.current:
            self.check_current_key(current)  # before a new key or CSR exists: nothing to clean up
        policy = self.fetch_policy()
        wanted = spec.key_algorithm
        if policy is not None and policy.key_algorithm:
            if policy.key_algorithm != wanted:
                log.info("csrattrs asks for another key type; following it",
                         extra={**self.log, "configured": wanted, "server_wants": policy.key_algorithm})
            wanted = policy.key_algorithm
        elif policy is not None and policy.unsupported_key:
            log.warning("csrattrs asks for a key type we cannot generate; using the configured one",
                        extra={**self.log, "server_wants": policy.unsupported_key})
        key: DeviceKey | None = None
        new_key = (current is None or operation == "simpleenroll" or spec.rekey
                   or wanted != current.key_algorithm)
        if not new_key:
            try:
                key = self.keys.load(current.key_id)
            except KeyServiceError as e:
                if not e.key_missing:
                    raise
                log.warning("the current key is gone from crypto_service: rekeying", extra={**self.log,
                                                                                           "key_id": current.key_id})
                new_key = True
        if new_key:
            key = self.keys.generate(wanted, spec.key_label)
        pending = Pending(key.key_id, key.algorithm, new_key, operation, cred_name, started=time.time())
        self.state.pending = pending
        self.save_state()  # the new key is now known, even if we crash before the CSR exists
        content = self.content(current, operation == "simplereenroll", policy)
        signed = build_csr(content, key, self.keys)
        pending.csr_b64 = base64.b64encode(signed.der).decode()
        self.save_state()
        log.info("CSR built", extra={**self.log, "operation": operation, "key_id": key.key_id,
                                     "algorithm": key.algorithm, "new_key": new_key, "csr_sha256": signed.sha256,
                                     "subject": content.subject.human_friendly})
        return pending

    def _send(self, pending: Pending, csr_der: bytes, creds: Credentials) -> list[Cert]:
        poll = self.spec.poll
        body = pkcs7.encode_body(csr_der)
        while True:
            self.cancel.check()
            wait = pending.next_poll - time.time()
            if wait > 0:
                self.cancel.wait(wait)
            try:
                resp = self.http(creds).request("POST", pending.operation, body, PKCS10)
            except KeyServiceError as e:
                if e.key_missing:
                    self._drop_pending()  # the current certificate's key is gone: this request cannot be sent
                raise
            if resp.status == 202:
                pending.polls += 1
                delay = retry_after(resp.header("Retry-After"), utcnow())
                delay = poll.default_s if delay is None else delay
                delay = min(max(delay, poll.min_s), poll.max_s)
                elapsed = time.time() - pending.started
                if pending.polls >= poll.max_polls or elapsed + delay > poll.max_total_s:
                    self._drop_pending()
                    raise PendingError(f"{pending.operation}: still pending after {pending.polls} polls / "
                                       f"{elapsed:.0f} s (bounds: {poll.max_polls} polls, {poll.max_total_s:.0f} s)")
                pending.next_poll = time.time() + delay
                self.save_state()
                log.info("server accepted the request for later; polling with the identical CSR",
                         extra={**self.log, "retry_after_s": delay, "polls": pending.polls})
                continue
            try:
                raise_for_status(resp, pending.operation, (200,))
            except AuthError:
                self._drop_pending()
                raise
            except HttpStatusError as e:
                if 400 <= e.status < 500:
                    self._drop_pending()  # the server refused this CSR; a new one next time
                raise
            try:
                return pkcs7.certs_only(pkcs7.decode_body(resp.body, pending.operation), pending.operation)
            except ProtocolError:
                self._drop_pending()
                raise

    def _verify_and_commit(self, pending: Pending, csr_der: bytes, certs: list[Cert],
                           current: Credential | None) -> Outcome:
        from asn1crypto import csr as acsr
        info = acsr.CertificationRequest.load(csr_der)["certification_request_info"]
        spki = info["subject_pk_info"].dump()
        try:
            mine = [c for c in certs if c.public_key.spki_der == spki]
            if not mine:
                raise ValidationError(f"{pending.operation}: the server returned no certificate for our public key "
                                      f"(got {', '.join(repr(c.subject_text) for c in certs)})")
            leaf = mine[0]
            changed = issued.differences(info, leaf)
            if changed and self.spec.strict_subject:
                raise ValidationError(f"{pending.operation}: the certificate differs from the request "
                                      f"({'; '.join(changed)}) and strict_subject is set")
            why = issued.unfit(leaf, client_auth=self.server.reenroll.current)
            if why:
                raise ValidationError(f"{pending.operation}: the certificate is not usable: {why}")
            when = utcnow()
            path = chain.validate(leaf, [c for c in certs if c != leaf] + self.trust.ca_certs,
                                  self.trust.anchors(when), when, self.spec.clock_skew_s)
            if leaf.not_after <= when:
                raise ValidationError(f"{pending.operation}: the new certificate has already expired")
        except ValidationError:
            self._drop_pending()
            raise
        self.cancel.check()  # a stop request arriving now still leaves the old pair current
        key_label = self.spec.key_label
        credential = self.store.commit(leaf, path.intermediates, pending.key_id, pending.key_algorithm, key_label,
                                       extra={"server": self.server.name,
                                              "csr_sha256": hashlib.sha256(csr_der).hexdigest(),
                                              "differences": changed},
                                       crypto_socket=self.cfg.crypto_socket)
        superseded = current.key_id if current is not None and current.key_id != pending.key_id else None
        self.state.pending = None
        if superseded is not None:
            self.state.retire_keys.append(superseded)
        self.save_state()
        if changed:  # RFC 7030 lets the CA decide the content; say exactly what it changed
            log.warning("the CA changed the requested content", extra={**self.log, "differences": changed,
                                                                       "subject": leaf.subject_text,
                                                                       "san": leaf.san_text})
        log.info("certificate installed", extra={**self.log, "generation": credential.generation,
                                                 "serial": leaf.serial_hex, "not_after": leaf.not_after.isoformat(),
                                                 "key_id": pending.key_id, "rekeyed": pending.new_key,
                                                 "operation": pending.operation, "polls": pending.polls})
        return Outcome(credential, pending.operation, pending.new_key, pending.polls)

    def _drop_pending(self) -> None:
        p = self.state.pending
        if p is None:
            return
        if p.new_key:
            self.state.retire_keys.append(p.key_id)
        self.state.pending = None
        self.save_state()


def _attribute_value(oid: str, der: bytes):
    """A subject attribute value the server dictated, parsed with the type asn1crypto knows for the attribute."""
    from asn1crypto import core
    spec = ax509.NameTypeAndValue._oid_specs.get(ax509.NameType.map(oid), core.Any)
    return spec.load(der)
