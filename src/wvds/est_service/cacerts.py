"""Trust anchors of one EST server: explicit, bootstrapped by fingerprint, rolled over.

RFC 7030 4.1: the *explicit* trust anchor (config `trust_anchor`) authenticates
the EST server; the CA certificates from /cacerts are only believed when they chain
to it. Without an explicit anchor, *bootstrap* mode fetches /cacerts over an
unauthenticated connection (no credentials sent) and accepts a CA certificate only
if its SHA-256 fingerprint equals the configured one; from then on that certificate
is the anchor and everything else is authenticated as usual.

Root CA key rollover (RFC 7030 4.1.3): a /cacerts answer may carry NewWithOld (the
new CA key certified by the old one), OldWithNew and NewWithNew (the new
self-signed root). A self-signed certificate becomes an additional anchor only if
a certificate for the same subject and the same public key chains to a current
anchor (i.e. the old root vouches for the new key). Accepted anchors are kept in
<state_dir>/servers/<name>/anchors.pem; an expired accepted anchor is dropped (the
configured ones never are). The validated CA certificates (cacerts.pem) serve to
build certificate paths.
"""
from __future__ import annotations

import datetime as dt
import logging
import os

from wvds.est_service import chain
from wvds.est_service.config import Server
from wvds.est_service.errors import EstError, ValidationError
from wvds.est_service.store import atomic_write
from wvds.est_service.x509 import Cert, pem_bundle

log = logging.getLogger("wvds.est.cacerts")


class TrustStore:
    def __init__(self, server: Server, directory: str, skew_s: float = 300.0):
        self.server, self.dir, self.skew_s = server, directory, skew_s
        self.configured: list[Cert] = []
        self.accepted: list[Cert] = []
        self.ca_certs: list[Cert] = []
        self.load()

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def load(self) -> None:
        if self.server.trust_anchor:
            with open(self.server.trust_anchor, "rb") as f:
                self.configured = Cert.from_pem_text(f.read())
            if not self.configured:
                raise EstError(f"{self.server.trust_anchor}: no certificate in the trust anchor file")
        self.accepted = self._read("anchors.pem")
        self.ca_certs = self._read("cacerts.pem")

    def _read(self, name: str) -> list[Cert]:
        try:
            with open(self._path(name), "rb") as f:
                text = f.read()
            return Cert.from_pem_text(text) if text.strip() else []
        except FileNotFoundError:
            return []
        except EstError as e:
            log.warning("ignoring unreadable trust file", extra={"file": self._path(name), "error": str(e)})
            return []

    def _save(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        atomic_write(self._path("anchors.pem"), pem_bundle(self.accepted))
        atomic_write(self._path("cacerts.pem"), pem_bundle(self.ca_certs))

    def anchors(self, when: dt.datetime | None = None) -> list[Cert]:
        out = list(self.configured)
        out += [c for c in self.accepted if c not in out and (when is None or c.not_after >= when)]
        return out

    @property
    def needs_bootstrap(self) -> bool:
        return not self.anchors()

    def tls_anchors_pem(self, when: dt.datetime) -> str:
        certs = self.anchors(when)
        certs += [c for c in self.ca_certs if c not in certs]
        return pem_bundle(certs)

    def bootstrap(self, certs: list[Cert], when: dt.datetime) -> Cert:
        """Accept the CA certificate with the configured fingerprint from an unauthenticated /cacerts."""
        want = self.server.bootstrap_ca_fingerprint
        match = [c for c in certs if c.fingerprint == want]
        if not match:
            raise ValidationError(f"bootstrap: no CA certificate in /cacerts has the configured fingerprint "
                                  f"(got {', '.join(c.fingerprint[:16] + '...' for c in certs)})")
        anchor = match[0]
        if not anchor.is_ca or not anchor.valid_at(when, self.skew_s):
            raise ValidationError(f"bootstrap: {anchor.subject_text!r} is not a currently valid CA certificate")
        self.accepted = [anchor] + [c for c in self.accepted if c != anchor]
        self._save()
        log.info("bootstrap trust anchor accepted by fingerprint",
                 extra={"server": self.server.name, "subject": anchor.subject_text, "sha256": anchor.fingerprint})
        return anchor

    def accept_cacerts(self, certs: list[Cert], when: dt.datetime) -> list[Cert]:
        """Validate an authenticated /cacerts answer against the anchors; keep what chains; handle rollover."""
        anchors = self.anchors(when)
        validated: list[Cert] = [c for c in certs if c in anchors]
        new_anchors: list[Cert] = []
        for _round in range(2):
            progress = True
            while progress:
                progress = False
                for c in certs:
                    if c in validated or not c.is_ca:
                        continue
                    try:
                        chain.validate(c, [v for v in validated if v != c], anchors + new_anchors, when, self.skew_s)
                    except ValidationError:
                        continue
                    validated.append(c)
                    progress = True
            # NewWithNew (RFC 4210 4.4): a self-signed root, vouched for by its NewWithOld - the same name and key,
            # self-issued, signed directly by a current anchor's (old) key. Only the anchor's key holder can make
            # that: an intermediate's key holder cannot promote its own certificate to an anchor this way.
            for c in certs:
                if c in anchors or c in new_anchors or not c.is_ca or not c.self_issued:
                    continue
                vouched = [v for v in validated if v != c and v.subject == c.subject and v.self_issued
                           and v.public_key.spki_der == c.public_key.spki_der
                           and any(a.subject == v.issuer and a.public_key.spki_der != v.public_key.spki_der
                                   and chain.cert_signed_by(v, a) for a in anchors)]
                if vouched and c.valid_at(when, self.skew_s) and chain.cert_signed_by(c, c):
                    new_anchors.append(c)
                    if c not in validated:
                        validated.append(c)
        if not validated:
            raise ValidationError(f"/cacerts: no certificate chains to the trust anchor of server {self.server.name}")
        for c in new_anchors:
            log.info("root CA rollover: new trust anchor accepted",
                     extra={"server": self.server.name, "subject": c.subject_text, "sha256": c.fingerprint})
        rejected = [c for c in certs if c not in validated]
        if rejected:
            log.warning("/cacerts: certificates not chaining to the trust anchor ignored",
                        extra={"server": self.server.name, "subjects": [c.subject_text for c in rejected]})
        self.accepted = [c for c in self.accepted + new_anchors if c.not_after >= when]
        self.accepted = list(dict.fromkeys(self.accepted))
        self.ca_certs = [c for c in validated]
        self._save()
        return validated
