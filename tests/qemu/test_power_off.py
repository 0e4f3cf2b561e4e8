"""How qemu/run_smoke.py knows a run is over (no QEMU needed): on QEMU the guest's power-off ends the
process; under L4Re only the console says so, and uvmm dying must end the run at once, with the reason."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

from support.targets import ROOT

spec = importlib.util.spec_from_file_location("run_smoke", ROOT / "qemu" / "run_smoke.py")
run_smoke = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_smoke)


def sleeper(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


def test_a_process_that_ends_by_itself_is_a_power_off():
    with sleeper(0.2) as proc:
        assert run_smoke.wait_for_power_off(proc, None, 30) == (True, "")


def test_the_guests_power_off_on_the_l4re_console_ends_qemu(tmp_path):
    console = tmp_path / "console.log"
    console.write_bytes(b"[  297.05] systemd-shutdown[1]: Powering off.\n[  297.07] reboot: Power down\n")
    with sleeper(60) as proc:
        started = time.monotonic()
        assert run_smoke.wait_for_power_off(proc, console, 30) == (True, "")
        assert time.monotonic() - started < 10 and proc.returncode is not None


def test_uvmm_dying_ends_the_run_and_says_so(tmp_path):
    console = tmp_path / "console.log"
    console.write_bytes(b"VMM: FATAL: Unmergable mmio regions in VM address space:\n")
    with sleeper(60) as proc:
        powered_off, error = run_smoke.wait_for_power_off(proc, console, 30)
        assert powered_off and "VMM: FATAL" in error and proc.returncode is not None


def test_a_guest_that_never_powers_off_times_out(tmp_path):
    console = tmp_path / "console.log"
    console.write_bytes(b"still running\n")
    with sleeper(60) as proc:
        assert run_smoke.wait_for_power_off(proc, console, 1) == (False, "")
        proc.kill()
