"""liboqs, the conformance tests' independent implementation (docs/conformance.md).

recipes/liboqs builds it (`scons liboqs`, which `./run test` runs) without OpenSSL, into
build/x86_64/liboqs/direct_deploy/liboqs; liboqs-python (pinned in requirements/) is the binding. liboqs-python
downloads and builds a liboqs of its own with git when it cannot load one: here that must never
happen silently, so a missing build fails the test at once, the git it would use is pointed at an
address that does not exist, and the library it loaded is checked to be ours.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.targets import ROOT

LIBOQS = ROOT / "build" / "x86_64" / "liboqs" / "direct_deploy" / "liboqs"  # packaging/SConscript.conan
_oqs = None


def load():
    """The `oqs` module, bound to our liboqs build (pytest.fail otherwise)."""
    global _oqs
    if _oqs is not None:
        return _oqs
    lib = LIBOQS / "lib" / "liboqs.so"
    if not lib.exists():
        pytest.fail(f"{lib} missing: run 'scons liboqs' (./run test does)")
    saved = {k: os.environ.get(k) for k in ("OQS_INSTALL_PATH", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0",
                                            "GIT_CONFIG_VALUE_0")}
    os.environ.update(OQS_INSTALL_PATH=str(LIBOQS), GIT_CONFIG_COUNT="1",
                      GIT_CONFIG_KEY_0="url.invalid://no-download-from-tests/.insteadOf", GIT_CONFIG_VALUE_0="https://")
    try:
        import oqs
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    loaded = Path(oqs.native()._name).resolve()
    if loaded != lib.resolve():
        pytest.fail(f"liboqs-python loaded {loaded}, not this build's {lib}")
    _oqs = oqs
    return oqs
