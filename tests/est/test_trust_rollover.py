"""Root CA rollover in the trust store (cacerts.TrustStore.accept_cacerts), in the FIPS worker: a new root is
accepted only when its NewWithOld is signed by the current anchor's key; the holder of an intermediate's key
cannot promote a self-signed copy of its certificate to a trust anchor."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support import fips_process
from support.fips_process import in_fips_process


@pytest.fixture(scope="module", autouse=True)
def fips_worker(fips_env):
    fips_process.configure(fips_env["OPENSSL_CONF"], fips_env)
    yield
    fips_process.shutdown()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)])


def _ca(subject: str, issuer: str, key, signer, serial: int, years: int = 5) -> bytes:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(key.public_key()).serial_number(serial).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def test_rollover_needs_the_old_roots_signature(tmp_path):
    root, new_root, issuing = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    certs = {
        "root": _ca("Root", "Root", root, root, 1),
        "issuing": _ca("Issuing", "Root", issuing, root, 2),
        "issuing-self-signed": _ca("Issuing", "Issuing", issuing, issuing, 3, years=80),  # the attack
        "new-with-old": _ca("Root", "Root", new_root, root, 4),
        "new-with-new": _ca("Root", "Root", new_root, new_root, 5),
    }
    (tmp_path / "ta.pem").write_bytes(x509.load_der_x509_certificate(certs["root"]).public_bytes(
        serialization.Encoding.PEM))
    accepted = check_rollover(str(tmp_path), certs)
    assert accepted == ["new-with-new"], accepted


@in_fips_process
def check_rollover(directory: str, certs: dict[str, bytes]) -> list[str]:
    from wvds.est_service import config
    from wvds.est_service.cacerts import TrustStore
    from wvds.est_service.x509 import Cert
    pw = f"{directory}/pw"
    with open(pw, "w") as f:
        f.write("x")
    cfg = config.parse({"state_dir": f"{directory}/state",
                        "servers": {"s": {"url": "https://est.example:8443", "trust_anchor": f"{directory}/ta.pem",
                                          "auth": {"bootstrap": {"username": "u", "password_file": pw}}}},
                        "certificates": [{"name": "device", "subject": {"CN": "x"}}]})
    store = TrustStore(cfg.servers["s"], f"{directory}/trust")
    by_der = {der: name for name, der in certs.items()}
    when = dt.datetime.now(dt.timezone.utc)
    before = set(c.der for c in store.anchors(when))
    store.accept_cacerts([Cert(der) for name, der in certs.items() if name != "root"], when)
    return sorted(by_der[c.der] for c in store.anchors(when) if c.der not in before)
