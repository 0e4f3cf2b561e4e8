"""The QEMU aarch64 system test of the delivery tarball (qemu/run_smoke.py): boots the Debian 12
arm64 guest, installs the tarball with install.sh, runs qemu/smoke.sh there and reads its results.
Twice: on QEMU's virt machine, and (marked l4re, only with ./run test --l4re) in a VM under Fiasco +
uvmm, the L4Re variant of the hardware-in-the-loop test (docs/l4re.md)."""
from __future__ import annotations

import datetime
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


@pytest.fixture(scope="module", params=["qemu", pytest.param("l4re", marks=pytest.mark.l4re)])
def result(request):
    l4re = request.param == "l4re"
    tarball = run_smoke.default_tarball()
    if not tarball.exists():
        pytest.fail(f"{tarball} is missing: ./run test builds it before the tests")
    if run_smoke.guest_image.cached_guest() is None:
        pytest.fail("the QEMU guest is not built: ./run test builds it before pytest ('scons qemu-guest'); "
                    "the tests only boot it")
    if l4re and run_smoke.vm_image.l4re_build.cached_image() is None:
        pytest.fail("L4Re is not built: ./run test --l4re builds it before the tests ('scons l4re')")
    # kept after the run: results.json and console.log for the release record
    out = ROOT / "build" / ("l4re-vm" if l4re else "qemu")
    return run_smoke.run(tarball, out, timeout=900, build_guest=False, l4re=l4re), out, l4re


def test_every_step_passes_in_the_guest(result):
    res, out, _ = result
    failed = [f"{s['step']}: {s.get('detail', '')}" for s in res["steps"] if not s["ok"]]
    assert res["passed"], (run_smoke.summary(res) + "\n\n" + "\n\n".join(failed)
                           + "\n\n--- guest console ---\n" + run_smoke.console_tail(out))


def test_results_are_complete_and_timed(result):
    res, _, l4re = result
    assert [s["step"] for s in res["steps"]] == list(run_smoke.expected_steps(l4re))
    assert all(isinstance(s["seconds"], (int, float)) and s["seconds"] >= 0 for s in res["steps"])
    assert res["guest_uptime_at_smoke_start_s"] and res["guest_uptime_at_end_s"]
    assert not res["timed_out"]


def test_the_guest_ran_where_asked_with_the_right_time(result):
    res, out, l4re = result
    boot = next(s for s in res["steps"] if s["step"] == "boot")["detail"]
    if l4re:  # the device tree of l4re/vm/wvds-vm.dts, and on the console the stack that started the VM
        assert "machine 'WvdS L4Re VM'" in boot, boot
        console = (out / "console.log").read_text(errors="replace")
        assert "Starting kernel fiasco" in console and "MOE: Starting: rom/ned rom/wvds-vm.ned" in console
        assert "VMM[main]: Hello out there." in console
        # the native gateway task did oem_gateway's steps through crypto_service in the VM over its channel
        # (step l4re_channel configured the service to serve the port), then timed round trips
        gateway = [line for line in console.splitlines() if "wvds-gateway:" in line]
        assert not [line for line in gateway if "FAILED" in line], gateway
        assert any("all steps succeeded over the L4Re channel (168 requests)" in line for line in gateway), gateway
        for op in ("RANDOM 16 B", "AES-256-GCM encrypt 64 B", "ML-DSA-65 sign 64 B"):
            assert any(f"round trip {op}: n=50 " in line for line in gateway), (op, gateway)
    else:
        assert "machine 'linux,dummy-virt'" in boot, boot
    # the guest's clock comes from the machine's RTC (passed through to the VM under L4Re): without it
    # no certificate would be valid yet and EST would fail
    clock = datetime.datetime.fromisoformat(boot.split("clock ")[1].split(";")[0].replace("Z", "+00:00"))
    assert abs(clock - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(hours=2), boot
