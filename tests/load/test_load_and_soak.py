"""Load levels of 1, 4, 16 and 64 clients, and a short soak: nothing wrong, nothing lost, no memory growth.

Uses bench/soak.py (the documented 10-minute soak: `python bench/soak.py`) against one real
crypto_service: every client checks every result (AES round trips, ML-DSA signatures verified by
the service and independently, RANDOM lengths), and at the end the service's invocation counter
of each client's AES key must equal the encryptions that client made. Latency percentiles and the
service's RSS are printed (pytest -s) and written to the test's tmp dir as JSON.
"""
from __future__ import annotations

import json
import sys

import pytest

from support.targets import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import soak  # noqa: E402

LEVELS = (1, 4, 16, 64)


@pytest.fixture(scope="module")
def load_service(tmp_path_factory):
    svc = soak.start_service(tmp_path_factory.mktemp("load"), max(LEVELS) + 8)
    yield svc
    svc.stop()
    assert "Traceback" not in svc.log(), svc.log()[-4000:]


@pytest.mark.slow
@pytest.mark.parametrize("clients", LEVELS)
def test_load_level(load_service, clients, tmp_path):
    r = soak.run_load(load_service.socket, clients, duration=3.0, service_pid=load_service.proc.pid)
    soak.print_report(r)
    (tmp_path / f"load-{clients}.json").write_text(json.dumps(r, indent=2))
    assert r["wrong_results"] == [], r["wrong_results"][:10]
    assert r["lost_requests"] == [], r["lost_requests"][:10]
    assert r["client_loops"] >= clients, r


@pytest.mark.slow
def test_short_soak_memory_is_flat(load_service, tmp_path):
    """30 s with 8 clients reconnecting every 300 loops and churning keys: RSS must stay flat after warm-up."""
    r = soak.run_load(load_service.socket, 8, duration=30.0, service_pid=load_service.proc.pid, reconnect=300)
    soak.print_report(r)
    (tmp_path / "soak.json").write_text(json.dumps(r, indent=2))
    assert soak.verdict(r, max_growth_mib=4.0) == [], soak.verdict(r, 4.0)
