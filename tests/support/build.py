"""Bringing a build target up to date from a test, once per target and test process.

The suite may run in several processes (pytest-xdist): SCons keeps one state file per tree, so two
builds at once would race on it. Each runs under an exclusive lock on build/.tests-scons.lock.
"""
from __future__ import annotations

import fcntl
import subprocess

import pytest

from support.targets import BUILD, ROOT

_done: set[tuple[str, str]] = set()


def scons(target: str, arch: str, product) -> None:
    """`scons ARCHS=<arch> <target>`; fails the test if it fails or `product` (a Path) is still missing."""
    if (target, arch) in _done:
        return
    BUILD.mkdir(exist_ok=True)
    with open(BUILD / ".tests-scons.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run(["scons", "-Q", f"ARCHS={arch}", target], cwd=ROOT, capture_output=True, text=True)
    if r.returncode or not product.exists():
        pytest.fail(f"`scons {target} ARCHS={arch}` failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    _done.add((target, arch))
