"""kill -9 of either daemon at random points during certificate renewal, then restart.

crypto_service runs on the file key store (keys survive its restarts); est_service renews a
3-second certificate continuously with a new key every time (rekey), so at any moment it is
generating a key, building and signing a CSR, waiting for the EST server, or committing. Each
round kills crypto_service (and restarts it while est_service keeps running and must recover by
itself) or est_service, at a random moment. After every round a plain `once` must leave:
* a valid certificate/key pair whose key is in crypto_service under the id key.json names
  (no certificate without its key, no key mismatch, nothing half-committed);
* no pending request left behind, and no orphaned keys: every key carrying the certificate's
  label is one a kept generation refers to, or one est_service has scheduled for deletion
  (retire_keys in state.json: a superseded key whose deletion waits for the next pass).
"""
from __future__ import annotations

import json
import random
import signal
import time

import pytest

from support.est import EstClient, EstServer, assert_valid_pair
from wvds.client import Client

ROUNDS = 4


def _labelled_keys(crypto, label: str) -> set[int]:
    with Client(crypto.socket) as c:
        return {k for k, _ in c.list_keys() if c.describe_key(k).label == label}


def _referenced_keys(est: EstClient) -> set[int]:
    return {json.loads((g / "key.json").read_text())["key_id"] for g in est.cert_dir.glob("gen-*")
            if (g / "key.json").exists()}


@pytest.mark.slow
def test_kill9_of_either_daemon_during_renewal(file_service, faults_fips_env, tmp_path):
    server = EstServer(tmp_path / "est-server").start()
    crypto = file_service()
    crypto.start()
    est = EstClient(tmp_path / "est", faults_fips_env, crypto, server, "ML-DSA-44",
                    certificate={"renew_at": 0.1, "jitter": 0.0, "rekey": True,
                                 "retry": {"initial_s": 0.2, "max_s": 0.5}})
    label = est.config["certificates"][0]["key_label"]
    rnd = random.Random(99)
    killed = {"crypto_service": 0, "est_service": 0}
    try:
        server.control(lifetime_s=3)
        est.once()
        for n in range(ROUNDS):
            est.start_daemon()
            time.sleep(rnd.uniform(0.3, 1.5))
            if n % 2 == 0:  # crypto_service dies under est_service, comes back; est_service must carry on
                crypto.proc.send_signal(signal.SIGKILL)
                crypto.proc.wait()
                crypto.stop()
                killed["crypto_service"] += 1
                time.sleep(rnd.uniform(0.1, 0.5))
                crypto.start()
                time.sleep(rnd.uniform(0.5, 1.5))
            est.proc.send_signal(signal.SIGKILL)
            est.proc.wait()
            est.proc = None
            est.daemon_log.close()
            killed["est_service"] += 1
            server.control(lifetime_s=30)  # long enough to check the pair at leisure
            est.once()  # the restart repairs, deletes orphans, resumes or renews
            assert_valid_pair(est)
            assert est.state().get("pending") is None
            current = json.loads((est.cert_dir / "current" / "key.json").read_text())["key_id"]
            labelled = _labelled_keys(crypto, label)
            assert current in labelled
            known = _referenced_keys(est) | set(est.state().get("retire_keys", []))  # in use, or due for deletion
            assert labelled <= known, f"orphaned keys: {labelled - known}"
            server.control(lifetime_s=3)
            est.once("--force")
        assert est.generation() >= ROUNDS
        assert crypto.stop() == 0
        crypto.start()  # and a clean restart of crypto_service still has the current key
        assert_valid_pair(est)
    finally:
        if est.proc is not None:
            est.stop_daemon(signal.SIGKILL)
        server.stop()


def test_crash_between_commit_and_state_update_retires_the_superseded_key(tmp_path):
    """Regression (found by the test above): est_service killed after switching `current` to the new
    generation but before saving its state. The restart saw the pending request already answered and
    cleared it, but did not retire the key the commit superseded; once that generation was pruned,
    the key stayed in crypto_service, used by nothing, until some later restart."""
    import base64
    import datetime as dt
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from wvds.est_service.config import CertificateSpec, Config
    from wvds.est_service.renewal import Managed
    from wvds.est_service.state import CertState, Pending
    from wvds.est_service.store import CertStore
    from wvds.est_service.x509 import Cert

    def cert() -> Cert:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "gw")])
        now = dt.datetime.now(dt.timezone.utc)
        c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now)
             .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
        return Cert(c.public_bytes(serialization.Encoding.DER))

    cfg = Config(state_dir=str(tmp_path))
    spec = CertificateSpec("device", "s")
    store = CertStore(str(tmp_path / "certs" / "device"))
    store.commit(cert(), [], 11, "ML-DSA-44", "est:device")
    csr = b"the CSR of the renewal that was being committed"
    store.commit(cert(), [], 12, "ML-DSA-44", "est:device", extra={"csr_sha256": hashlib.sha256(csr).hexdigest()})
    CertState(pending=Pending(12, "ML-DSA-44", True, "simplereenroll", "reenroll",
                              base64.b64encode(csr).decode())).save(str(tmp_path / "certs" / "device" / "state.json"))
    m = Managed(cfg, spec)
    m.load()
    assert m.state.pending is None and m.current.key_id == 12
    assert 11 in m.state.retire_keys  # deleted once generation 1 (now the previous one) is no longer kept
