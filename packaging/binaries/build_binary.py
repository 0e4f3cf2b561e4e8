"""Compile the multi-call program (src/wvds/main.py) with Nuitka inside an architecture's build root.

Nuitka runs on the root's python3.11 (Debian 12's), so it links Debian 12's
libpython and finds that interpreter's extension modules - arm64 ones in the
aarch64 root. Nuitka itself is the pinned one from the tool venv, copied once
into $WVDS_CACHE with its bytecode precompiled (it is pure Python; parsing its
~200k lines under qemu-user on every build would cost minutes).

Caches, under $WVDS_CACHE/nuitka/:
* shared/ (NUITKA_CACHE_DIR) - Nuitka's module cache: the import analysis of every
  module included as bytecode (stdlib, third-party), keyed by Nuitka's settings and
  the module's source hash, re-validated on use. It is the same for both
  architectures (same Debian python3.11, same package versions), so the native
  x86_64 build fills it and the emulated aarch64 build, run after it, finds it
  full: a cold aarch64 build then only analyses wvds itself under qemu-user.
* ccache-<arch>/ - ccache for the C files. LTO is off: with -flto the real code
  generation happens at the final link for all files at once, so ccache saves
  nothing; without it, a one-line Python change recompiles a few C files and relinks.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import targets
from binaries.toolchain import Toolchain
from sysroot import chroot
from wvds.programs import MULTICALL

ENTRY = "/wvds/src/src/wvds/main.py"
PLUGIN = "/wvds/src/packaging/binaries/compile_policy.py"
# Key store backends are imported by name from wvds.keystore.base (importlib), so Nuitka cannot see them.
INCLUDE_MODULES = ["wvds.keystore.memory", "wvds.keystore.file", "wvds.keystore.tpm", "wvds.keystore.pkcs11"]
# python-pkcs11's Cython core imports pkcs11.attributes & co. from C: invisible to Nuitka as well.
INCLUDE_PACKAGES = ["pkcs11"]
# Standard library parts the product never imports; Nuitka would otherwise include all of the stdlib
# (as bytecode) in case of dynamic imports. Each one is checked by running the test suite on the binaries.
# What each costs, measured (docs/binaries.md, "Sizes"): the compressors, multiprocessing, XML
# and the CJK codecs are about 4 MB of the program and its folder; the product's text is ASCII and UTF-8
# (asn1crypto's string types need latin-1, UTF-16 and UTF-32, which stay; decimal stays for fractions).
CJK_CODECS = ["big5", "big5hkscs", "cp932", "cp949", "cp950", "euc_jis_2004", "euc_jisx0213", "euc_jp", "euc_kr",
              "gb18030", "gb2312", "gbk", "hz", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_2004",
              "iso2022_jp_3", "iso2022_jp_ext", "iso2022_kr", "johab", "shift_jis", "shift_jis_2004",
              "shift_jisx0213"]
NOT_INCLUDED = ["tkinter", "turtle", "turtledemo", "idlelib", "lib2to3", "pydoc", "pydoc_data", "doctest",
                "unittest", "test", "ensurepip", "venv", "distutils", "setuptools", "pip", "sqlite3", "dbm",
                "curses", "xmlrpc", "imaplib", "poplib", "smtplib", "nntplib", "ftplib",
                "telnetlib", "mailbox", "pickletools", "*.tests", "*.test",
                "multiprocessing", "_multiprocessing", "_posixshmem", "concurrent.futures.process",
                "_pydecimal", "lzma", "_lzma", "bz2", "_bz2", "tarfile",
                "xml", "pyexpat", "plistlib", "html", "_markupbase", "cgi", "cgitb", "_pyio", "tomllib",
                "configparser", "webbrowser", "mailcap", "netrc", "trace", "pstats", "timeit", "pyclbr",
                "modulefinder", "symtable", "xdrlib", "sndhdr", "imghdr", "uu", "chunk", "crypt",
                "_multibytecodec", "_codecs_cn", "_codecs_hk", "_codecs_iso2022", "_codecs_jp", "_codecs_kr",
                "_codecs_tw", *(f"encodings.{c}" for c in CJK_CODECS),
                # imported only lazily by what the programs use: pickle (logging's __reduce__), zipfile (shutil's
                # archives, importlib.metadata/resources), email's modern API (EmailMessage; http.client and
                # email.utils use the compat32 one), sysconfig's data (build variables)
                "pickle", "_compat_pickle", "zipfile", "importlib.metadata", "importlib.resources", "email.policy",
                "email.headerregistry", "email._header_value_parser", "email.generator", "email.contentmanager",
                "email.mime", "_sysconfigdata*", "tracemalloc", "_aix_support", "_osx_support"]


def nuitka_options(out: str = "/wvds/out") -> list[str]:
    return [
        "--mode=standalone",
        "--lto=no",
        "--python-flag=no_site",
        "--python-flag=no_docstrings",  # about 1 MB; nothing reads __doc__ at run time (wvds, asn1crypto, pkcs11)
        f"--output-dir={out}",
        f"--output-filename={MULTICALL}",
        f"--report={out}/report.xml",
        f"--user-plugin={PLUGIN}",
        *(f"--include-module={m}" for m in INCLUDE_MODULES),
        *(f"--include-package={p}" for p in INCLUDE_PACKAGES),
        *(f"--nofollow-import-to={m}" for m in NOT_INCLUDED),
        "--update-check=never",
        "--assume-yes-for-downloads",
        "--progress-bar=none",
        ENTRY,
    ]


def distributions(report: Path) -> list[tuple[str, str]]:
    """(name, version) of the third-party distributions Nuitka compiled in, from its report."""
    import xml.etree.ElementTree as ET
    root = ET.parse(report).getroot()
    return sorted((d.get("name"), d.get("version")) for d in root.iter("distribution"))


def nuitka_version() -> str:
    return metadata.version("nuitka")


def nuitka_tool(cache: Path) -> Path:
    """A copy of the tool venv's Nuitka package (with .pyc) that the roots can mount; made once per version."""
    version = nuitka_version()
    dest = cache / "nuitka-tool" / version
    if (dest / ".complete").exists():
        return dest
    import nuitka
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(Path(nuitka.__file__).parent, tmp / "nuitka", ignore=shutil.ignore_patterns("__pycache__"))
    # The tool venv's Python is Debian 12's python3.11 too: same bytecode format as the roots'.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(tmp / "nuitka")],
                   capture_output=True)
    (tmp / ".complete").write_text(version + "\n")
    try:
        os.replace(tmp, dest)
    except OSError:  # another build made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def build(arch: str, root: Path, site: Path, tools: Toolchain, repo: Path, out: Path, cache: Path,
          log) -> tuple[Path, float]:
    """Run Nuitka; returns (the main.dist directory, seconds)."""
    cache_dir = cache / "nuitka"
    (cache_dir / "shared").mkdir(parents=True, exist_ok=True)
    (cache_dir / f"ccache-{arch}").mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "main.dist", ignore_errors=True)  # Nuitka adds to an existing one, never removes
    env = {
        "PYTHONPATH": "/wvds/tools:/wvds/site:/wvds/src/src",
        "PYTHONDONTWRITEBYTECODE": "1",
        "NUITKA_CACHE_DIR": "/wvds/cache/shared",
        "CCACHE_DIR": f"/wvds/cache/ccache-{arch}",
        "CCACHE_MAXSIZE": "2G",
        "CCACHE_NOHASHDIR": "1",  # the build directory is the same path in every clone anyway
        "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0"),
        # after Nuitka's -O2: the compiled modules ~30 % smaller, unused helpers dropped (docs/binaries.md, "Sizes");
        # and the hardening every other C object of the delivery gets (toolchains/hardening.mk)
        "CFLAGS": " ".join(["-Os", "-ffunction-sections", "-fdata-sections", *targets.cflags(arch)]),
        "LDFLAGS": " ".join(["-Wl,--gc-sections", *targets.exe_ldflags()]),
        **tools.env,
    }
    binds = [chroot.Bind(repo, "/wvds/src"), chroot.Bind(nuitka_tool(cache), "/wvds/tools"),
             chroot.Bind(site, "/wvds/site"), chroot.Bind(out, "/wvds/out", True),
             chroot.Bind(cache_dir, "/wvds/cache", True), *tools.binds]
    started = time.monotonic()
    chroot.run(root, ["python3", "-m", "nuitka", *nuitka_options()], binds=binds, env=env, log=log)
    return out / "main.dist", time.monotonic() - started
