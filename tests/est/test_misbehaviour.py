"""Every misbehaviour of the server: the current pair stays, the error is reported, the client retries."""
from __future__ import annotations

import time

import pytest

from support.est import assert_valid_pair

ALGS = ("ML-DSA-65", "ECDSA-P256")


MISBEHAVIOURS = [  # (control settings, text the reported error must contain, CSR kept for a resend)
    ({"status": {"simplereenroll": 401}}, "HTTP 401", False),
    ({"status": {"simplereenroll": 403}}, "HTTP 403", False),
    ({"status": {"simplereenroll": 500}}, "HTTP 500", True),  # server trouble: the same CSR again later
    ({"malformed": ["simplereenroll"]}, "PKCS#7", False),
    ({"wrong_key": True}, "no certificate for our public key", False),
    ({"wrong_ca": True}, "does not chain to a trust anchor", False),
    ({"key_usage": ["key_encipherment"]}, "does not allow digital signatures", False),  # unfit (a rewritten
    # subject alone is accepted: tests/est/test_interop.py)
    ({"delay_s": {"simplereenroll": 3}}, "timed out", True),  # slower than timeout_s
]


@pytest.mark.parametrize("alg", ALGS)
def test_misbehaviour_keeps_the_current_pair(make_client, est_server, alg):
    """Each misbehaviour in turn: the renewal fails, the current pair stays, the error is reported;
    when the server behaves again the next attempt succeeds. (ECDSA: the cases where the key type
    matters, to keep the run short.)"""
    c = make_client(alg, server={"timeout_s": 1.5})
    c.once()
    before, gen = c.pair()[0], c.generation()
    cases = MISBEHAVIOURS if alg == "ML-DSA-65" else [m for m in MISBEHAVIOURS if set(m[0]) & {
        "malformed", "wrong_key", "wrong_ca", "key_usage"}]
    for n, (control, text, keeps_csr) in enumerate(cases, 1):
        est_server.control(**control)
        t0 = time.monotonic()
        c.once("--force", expect=1)
        assert time.monotonic() - t0 < 15
        assert c.generation() == gen and c.pair()[0] == before, control  # untouched
        assert_valid_pair(c)
        st = c.status()
        assert st["failures"] == n and text in st["last_error"], (control, st["last_error"])
        assert st["state"] == "valid" and st["next_attempt"] is not None
        assert (st["pending"] is not None) == keeps_csr, (control, st["pending"])
    est_server.control()
    c.once("--force")
    assert c.generation() == gen + 1
    assert_valid_pair(c)
    st = c.status()
    assert st["failures"] == 0 and st["last_error"] is None


def test_misbehaving_first_enrollment_reports_and_cleans_up(make_client, est_server):
    """No certificate yet and a certificate for the wrong key: nothing installed, the new key is deleted."""
    from wvds.client import Client
    c = make_client()
    est_server.control(wrong_key=True)
    c.once(expect=1)
    assert c.generation() is None
    st = c.status()
    assert st["state"] == "not enrolled" and "public key" in st["last_error"]
    assert c.state()["retire_keys"] == []  # the key made for the failed request is gone again
    with Client(c.crypto.socket) as cl:
        labels = [cl.describe_key(k).label for k, _alg in cl.list_keys()]
    assert c.config["certificates"][0]["key_label"] not in labels


@pytest.mark.parametrize("retry_after,count", [("1", 2), ("date:2", 1)])
def test_202_polls_with_identical_csr(make_client, est_server, retry_after, count):
    c = make_client("ECDSA-P256" if retry_after == "1" else "ML-DSA-65")
    est_server.control(pending={"count": count, "retry_after": retry_after})
    t0 = time.monotonic()
    c.once()
    elapsed = time.monotonic() - t0
    assert_valid_pair(c)
    posts = est_server.requests("simpleenroll")
    assert [p["status"] for p in posts] == [202] * count + [200]
    assert len({p["csr_sha256"] for p in posts}) == 1  # the identical CSR each time
    gaps = [b["ts"] - a["ts"] for a, b in zip(posts, posts[1:])]
    assert all(g >= 0.9 for g in gaps), gaps  # Retry-After honoured (HTTP-date has 1 s resolution)
    assert elapsed < 15


def test_202_without_retry_after_uses_default(make_client, est_server):
    c = make_client()
    est_server.control(pending={"count": 1, "retry_after": "1"}, no_retry_after=True)
    c.once()
    posts = est_server.requests("simpleenroll")
    assert [p["status"] for p in posts] == [202, 200] and posts[1]["ts"] - posts[0]["ts"] >= 0.45


def test_202_forever_is_bounded(make_client, est_server):
    c = make_client(certificate={"poll": {"default_s": 0.5, "min_s": 0.1, "max_s": 5, "max_total_s": 60,
                                          "max_polls": 3}})
    c.once()
    gen = c.generation()
    est_server.control(pending={"count": 1000, "retry_after": "0"})
    c.once("--force", expect=1)
    assert len(est_server.requests("simplereenroll")) == 3 and c.generation() == gen
    st = c.status()
    assert "still pending after 3 polls" in st["last_error"] and st["pending"] is None
    assert_valid_pair(c)


def test_pending_request_survives_restart(make_client, est_server):
    """A 202 answer, then the process ends: the next run resends the identical CSR."""
    c = make_client()
    c.config["certificates"][0]["poll"].update(max_total_s=120, min_s=30, max_s=60, default_s=30)  # poll far away
    c.write_config()
    est_server.control(pending={"count": 1, "retry_after": "30"})
    proc = c.start_daemon()
    deadline = time.monotonic() + 20
    while not est_server.requests("simpleenroll"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.3)
    assert c.stop_daemon() == 0 and proc.returncode == 0  # SIGTERM while waiting to poll: clean exit
    st = c.state()
    assert st["pending"] and st["pending"]["polls"] == 1
    c.config["certificates"][0]["poll"].update(min_s=0.1, default_s=0.5)
    c.write_config()
    pending_csr = st["pending"]["csr_b64"]
    # still waiting for next_poll (30 s): make it due now, as if the time had passed
    import json
    st["pending"]["next_poll"] = 0
    (c.cert_dir / "state.json").write_text(json.dumps(st))
    c.once()
    assert_valid_pair(c)
    posts = est_server.requests("simpleenroll")
    assert [p["status"] for p in posts] == [202, 200] and posts[0]["csr_sha256"] == posts[1]["csr_sha256"]
    import base64
    import hashlib
    assert hashlib.sha256(base64.b64decode(pending_csr)).hexdigest() == posts[1]["csr_sha256"]
