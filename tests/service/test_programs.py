"""The program list (wvds.programs) and what every program says on --version, here from source
(the native binaries: tests/binaries/test_binaries.py)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wvds import programs
from wvds.main import program_main
from wvds.version import VERSION

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("program", [*programs.PROGRAMS, programs.MULTICALL])
def test_every_program_prints_the_same_version_report(program):
    """Product version, then the OpenSSL in use and the FIPS provider's state (here: not configured)."""
    package = programs.PACKAGES.get(program, "wvds")  # the multi-call entry: python -m wvds
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([sys.executable, "-m", package, "--version"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{program} {VERSION} (from source, Python "), r.stdout
    assert lines[1].startswith("OpenSSL ") and lines[-1].startswith("FIPS provider"), r.stdout


def test_each_program_runs_from_its_package():
    for program, package in programs.PACKAGES.items():
        assert program_main(program).__module__.startswith(package + "."), program


def test_install_sh_links_every_program():
    """install.sh runs on the device without Python: its copy of the list must match."""
    text = (ROOT / "packaging" / "install.sh").read_text()
    listed = re.search(r'^PROGRAMS="([^"]*)"$', text, re.M).group(1).split()
    assert tuple(listed) == programs.PROGRAMS
