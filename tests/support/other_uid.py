"""Clients running as another uid (root only): the real client library, from a directory that uid
can reach, under Debian's python3 (the test virtual environment lives below root's home)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from support.service import clib_path
from support.targets import HOST, ROOT

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root (CI runs as root)")


def make_shared_dir() -> Path:
    """A directory another uid can reach, holding a copy of the client code and library."""
    d = Path(tempfile.mkdtemp(prefix="wvds-iso-"))
    d.chmod(0o755)
    shutil.copytree(ROOT / "src" / "wvds", d / "wvds", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(clib_path(HOST), d / "libclient.so")
    for p in d.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return d


def start_as(uid: int, shared: Path, socket: str, code: str, extra_groups: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start a client snippet as `uid` (primary group = uid, plus extra_groups); it prints a JSON result."""
    env = {"PYTHONPATH": str(shared), "WVDS_CLIENT_LIB": str(shared / "libclient.so"), "SOCK": socket,
           "PATH": "/usr/bin:/bin"}
    prog = "import json, os\nfrom wvds.client import Client, ServiceStatusError, TransportFailure\n" \
           "from wvds.protocol.constants import *\nfrom wvds.protocol.payloads import KeyRef\n" + textwrap.dedent(code)
    return subprocess.Popen(["/usr/bin/python3", "-c", prog], env=env, user=uid, group=uid,
                            extra_groups=list(extra_groups), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd="/")


def result_of(proc: subprocess.Popen, timeout: float = 60) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def run_as(uid: int, shared: Path, socket: str, code: str, extra_groups: tuple[int, ...] = ()) -> dict:
    return result_of(start_as(uid, shared, socket, code, extra_groups))
