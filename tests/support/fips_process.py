"""Run wvds.ossl tests in a child Python that maps exactly one libcrypto: our OpenSSL 3.6.3.

Why a child process: pytest itself has usually imported hashlib/ssl already, so
this process has Debian's libcrypto 3.0 mapped; loading our 3.6.3 beside it
would give two libcryptos in one process (wvds.ossl refuses that, rightly). A
process started with ``LD_LIBRARY_PATH=<openssl>/lib`` resolves every
``libcrypto.so.3`` — Python's ``_hashlib``/``_ssl`` and our ctypes binding — to
the same file.

How: a test decorated with `@in_fips_process` keeps its plain pytest shape
(parametrize works as usual). In the pytest process the decorated function only
forwards ``(module, name, args)`` to one long-lived worker (``python -m
support.fips_worker``), which imports the same test module and calls the undecorated
function there. The worker calls ``wvds.ossl.load(openssl_conf, modules_dir)``
once at start-up with a configuration fipsinstall made for this session. The
worker's environment has *no* OPENSSL_CONF/OPENSSL_MODULES: pyca/cryptography,
imported in the worker for cross-checks, bundles its own OpenSSL, which would
read those variables, try to use our FIPS provider and fail.

A failing test fails with the worker's traceback (arguments and results must pickle); a worker that dies (a crash in
C) fails the test it was running with its exit status and stderr, and the next
test starts a fresh worker. `run_python` runs one-off snippets in other
configurations (old libcrypto, broken FIPS config, ...).
"""
from __future__ import annotations

import functools
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support.targets import ROOT, Target

TARGET = Target("x86_64")
LIBDIR = TARGET.openssl_root / "lib"
MODULES = LIBDIR / "ossl-modules"
_LEN = struct.Struct("<I")


class _Config:
    openssl_conf: str | None = None
    fips_env: dict[str, str] | None = None  # fipsinstall's environment (OPENSSL_CONF etc.), for run_python
    scratch: Path | None = None  # where tests write variants of the configuration


def configure(openssl_conf: str, fips_env: dict[str, str], scratch: Path | None = None) -> None:
    """Called by conftest.py with the session's FIPS environment (fips_envs) and a directory of its own."""
    _Config.openssl_conf = openssl_conf
    _Config.fips_env = fips_env
    _Config.scratch = scratch


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python using our libcrypto: no OPENSSL_* variables unless given."""
    env = TARGET.env()
    env["LD_LIBRARY_PATH"] = str(LIBDIR)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    env.pop("WVDS_LIBCRYPTO", None)
    env.update(extra)
    return env


class _Worker:
    def __init__(self) -> None:
        assert _Config.openssl_conf, "no conftest.py configured the FIPS worker (configure())"
        self.stderr = tempfile.TemporaryFile()
        env = child_env(WVDS_TEST_OPENSSL_CONF=_Config.openssl_conf, WVDS_TEST_OPENSSL_MODULES=str(MODULES))
        self.proc = subprocess.Popen([sys.executable, "-m", "support.fips_worker"], env=env, cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        status, payload = self._receive()  # the worker reports whether load() succeeded
        if status != "ready":
            pytest.fail(f"FIPS worker did not start:\n{payload}", pytrace=False)

    def call(self, module: str, name: str, args: tuple, kwargs: dict):
        self._send((module, name, args, kwargs))
        status, payload = self._receive()
        if status == "ok":
            return payload
        pytest.fail(f"in the FIPS worker:\n{payload}", pytrace=False)

    def _send(self, obj) -> None:
        data = pickle.dumps(obj)
        try:
            self.proc.stdin.write(_LEN.pack(len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._died()

    def _receive(self):
        head = self.proc.stdout.read(_LEN.size)
        if len(head) < _LEN.size:
            self._died()
        return pickle.loads(self.proc.stdout.read(_LEN.unpack(head)[0]))

    def _died(self):
        code = self.proc.wait()
        self.stderr.seek(0)
        err = self.stderr.read().decode(errors="replace")[-4000:]
        pytest.fail(f"FIPS worker died with exit status {code}:\n{err}", pytrace=False)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


_worker: _Worker | None = None


def worker() -> _Worker:
    global _worker
    if _worker is None or not _worker.alive():
        if _worker is not None:
            _worker.close()
        _worker = _Worker()
    return _worker


def shutdown() -> None:
    global _worker
    if _worker is not None:
        _worker.close()
        _worker = None


def in_fips_process(fn):
    """Run this test function in the FIPS worker (arguments and return value are pickled)."""
    @functools.wraps(fn)
    def forward(*args, **kwargs):
        return worker().call(fn.__module__, fn.__qualname__, args, kwargs)
    return forward


def run_python(code: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a snippet in a fresh child Python with env (use child_env to build it)."""
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def fips_env() -> dict[str, str]:
    """fipsinstall's environment (OPENSSL_CONF, OPENSSL_MODULES) plus our library path."""
    return child_env(**{k: v for k, v in _Config.fips_env.items() if k.startswith("OPENSSL_")})


def openssl_conf() -> Path:
    """The session's openssl.cnf (fips + base, default_properties = fips=yes)."""
    return Path(_Config.openssl_conf)


def scratch() -> Path:
    """A directory for variants of the session's configuration (not the shared fipsinstall directory)."""
    return _Config.scratch or Path(tempfile.mkdtemp(prefix="ossl-scratch-"))
