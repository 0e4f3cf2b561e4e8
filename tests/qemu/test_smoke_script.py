"""qemu/smoke.sh, the script the guest runs (no QEMU needed): shellcheck-clean, and the number of requests
its l4re_channel step waits for is the number the L4Re gateway sends."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from support.targets import ROOT

SMOKE = ROOT / "qemu" / "smoke.sh"


def test_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck missing: it is in tools/apt-packages.txt (./run test installs it)")
    r = subprocess.run(["shellcheck", "--shell=bash", str(SMOKE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_channel_step_waits_for_what_the_gateway_sends():
    """13 one-off steps, TIMED round trips of each timed step, one KEY_DELETE per key made (three
    KEY_GENERATE/MLKEM_KEYGEN, and the AES keys of encaps and decaps)."""
    gateway = (ROOT / "l4re" / "gateway" / "main.cc").read_text()
    steps = re.search(r"enum Step \{(.*?)\};", gateway, re.S).group(1).replace("\n", " ").split(",")
    steps = [s.strip() for s in steps]
    timed = [s for s in steps if s.startswith("Timed_")]
    one_off = steps[:steps.index(timed[0])]
    per_timed = int(re.search(r"unsigned const TIMED = (\d+);", gateway).group(1))
    expected = len(one_off) + len(timed) * per_timed + 5
    assert f"GATEWAY_REQUESTS={expected} " in SMOKE.read_text()
    assert f"({expected} requests)" in (ROOT / "tests" / "qemu" / "test_smoke.py").read_text()
