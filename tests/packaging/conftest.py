"""Fixtures for the delivery tests: one tarball per session, unpacked once, installs into temp dirs.

The tarball is built from what build/ holds (like `scons dist`), into a temporary
directory, so these tests never depend on a stale dist/. Everything that needs
more than that builds on these fixtures.
"""
from __future__ import annotations

import platform
import sys

import pytest

from packaging_support import Delivery, build_delivery, unpack
from support.targets import BUILD, ROOT

sys.path.insert(0, str(ROOT / "packaging"))


@pytest.fixture(scope="session")
def delivery(tmp_path_factory) -> Delivery:
    for arch in ("x86_64", "aarch64"):
        if not (BUILD / arch / "openssl" / "bin" / "openssl").exists():
            pytest.fail(f"no OpenSSL build for {arch} in {BUILD}: run 'scons' (./run test does)")
        if not (BUILD / arch / "clib" / "libl4re_crypto_service.so").exists():
            pytest.fail(f"no client library for {arch}: run 'scons' (./run test does)")
    out = tmp_path_factory.mktemp("dist")
    return build_delivery(out)


@pytest.fixture(scope="session")
def unpacked(delivery, tmp_path_factory):
    """The delivery unpacked as an OEM does it (tar xzf); shared: tests must not modify it."""
    return unpack(delivery.tarball, tmp_path_factory.mktemp("unpacked"))


@pytest.fixture(scope="session")
def host_arch() -> str:
    return platform.machine()
