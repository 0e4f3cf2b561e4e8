"""The QEMU aarch64 system test of the delivery tarball (qemu/run_smoke.py): boots the Debian 12
arm64 guest, installs the tarball with install.sh, runs qemu/smoke.sh there and reads its results."""
from __future__ import annotations

import importlib.util
import os
import shutil

import pytest
from support.targets import ROOT

spec = importlib.util.spec_from_file_location("run_smoke", ROOT / "qemu" / "run_smoke.py")
run_smoke = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_smoke)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the guest is built as root (debootstrap), and only then"),
    pytest.mark.skipif(shutil.which("qemu-system-aarch64") is None, reason="qemu-system-arm is not installed"),
]


@pytest.fixture(scope="module")
def result():
    tarball = run_smoke.default_tarball()
    if not tarball.exists():
        pytest.fail(f"{tarball} is missing: ./run test builds it before the tests")
    if run_smoke.guest_image.cached_guest() is None:
        pytest.fail("the QEMU guest is not built: ./run test builds it before pytest ('scons qemu-guest'); "
                    "the tests only boot it")
    out = ROOT / "build" / "qemu"  # kept after the run: results.json and console.log for the release record
    return run_smoke.run(tarball, out, timeout=900, build_guest=False), out


def test_every_step_passes_in_the_guest(result):
    res, out = result
    failed = [f"{s['step']}: {s.get('detail', '')}" for s in res["steps"] if not s["ok"]]
    assert res["passed"], (run_smoke.summary(res) + "\n\n" + "\n\n".join(failed)
                           + "\n\n--- guest console ---\n" + run_smoke.console_tail(out))


def test_results_are_complete_and_timed(result):
    res, _ = result
    assert [s["step"] for s in res["steps"]] == list(run_smoke.STEPS)
    assert all(isinstance(s["seconds"], (int, float)) and s["seconds"] >= 0 for s in res["steps"])
    assert res["guest_uptime_at_smoke_start_s"] and res["guest_uptime_at_end_s"]
    assert not res["timed_out"]
