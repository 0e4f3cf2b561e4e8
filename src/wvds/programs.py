"""The delivered programs: their names, and what each says about itself (`--version`).

The one list of them. The native build is one executable, MULTICALL, with a link
per program (wvds.main dispatches on the name); the build (packaging/binaries), the
delivery (packaging/delivery.py, sbom.py) and the tests read the names from here.
packaging/install.sh, a shell script on the device, keeps a copy that a test compares.
Imported by SCons and the packaging scripts too: nothing heavy at import time.
"""
from __future__ import annotations

import sys

from wvds.version import VERSION

# program -> its package (`python -m PACKAGE` runs it from source), in the order the documents list them
PACKAGES = {"wvds_crypto_service": "wvds.crypto_service", "wvds_est_service": "wvds.est_service",
            "wvdsctl": "wvds.cli"}
PROGRAMS = tuple(PACKAGES)
MULTICALL = "wvds"  # the compiled executable the programs are links to


def compiled() -> bool:
    """True inside the Nuitka binary (Nuitka sets __compiled__ in every module it compiles)."""
    return "__compiled__" in globals()


def version_text(program: str) -> str:
    """Product version, OpenSSL version and FIPS provider state, one per line: every program's --version.

    The FIPS provider is brought up the way the program would ($OPENSSL_CONF and
    $OPENSSL_MODULES); without them it reports that the provider is not available.
    """
    import ssl

    from wvds import ossl
    build = "native build" if compiled() else "from source"
    lines = [f"{program} {VERSION} ({build}, Python {sys.version.split()[0]})"]
    try:
        info = ossl.load()
    except ossl.OsslError as e:
        lines += [ssl.OPENSSL_VERSION, f"FIPS provider: not available ({e})"]
        return "\n".join(lines)
    lines.append(info.openssl_version)
    if ssl.OPENSSL_VERSION != info.openssl_version:
        lines.append(f"WARNING: Python's ssl module uses {ssl.OPENSSL_VERSION}")
    lines.append(f"FIPS provider {info.fips_version} "
                 f"({'self-test passed' if info.self_test_passed else 'self-test FAILED'}, "
                 f"fips=yes {'default' if info.fips_default else 'NOT default'})")
    return "\n".join(lines)
