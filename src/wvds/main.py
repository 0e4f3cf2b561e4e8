"""One program, three names: the multi-call entry point of the native (Nuitka) binaries.

The delivery ships one compiled executable, ``wvds``, and ``wvds_crypto_service``,
``wvds_est_service`` and ``wvdsctl`` as links to it: one copy of the compiled
product and of the Python runtime instead of three (a third of the build time
and of the size). The program is chosen by the name the executable was started
under (the basename of argv[0], as busybox does); started as ``wvds`` (or as
``python -m wvds`` from source), the first argument names it:
``wvds wvdsctl status``.

``--version`` is answered here, the same way for all three programs
(wvds.programs.version_text, which they use when started from source too): product
version, the OpenSSL the process really uses (ssl and our ctypes bindings alike)
and the state of the FIPS provider. ``wvds --self-check`` checks what a delivered
binary promises (one libcrypto, ours; ssl and hashlib in it; MD5 refused; with the
TPM backend and the device's tpm2-tss loaded, still no crypto library but ours) and
prints the findings as JSON: for the tests, the installer and the QEMU smoke test.

hashlib: Python's hashlib falls back to its own built-in MD5, SHA-1, SHA-2, SHA-3
and BLAKE2 code whenever OpenSSL refuses a digest - under the FIPS provider it
would quietly compute MD5 outside OpenSSL. The multi-call entry point removes
those fallbacks as soon as hashlib is first imported, so every hashlib digest
is OpenSSL's and a non-approved one raises ValueError.
"""
from __future__ import annotations

import json
import os
import sys

from wvds.programs import MULTICALL, PROGRAMS, compiled, version_text
from wvds.version import VERSION

BUILTIN_DIGESTS = ("_md5", "_sha1", "_sha256", "_sha512", "_sha3", "_blake2")


def invoked_as(argv: list[str]) -> str:
    """The name the program was started under.

    Nuitka's standalone binary replaces argv[0] by its own absolute path (for
    sys.executable and friends) and keeps what the caller passed, the name of a
    link included, in __compiled__.original_argv0.
    """
    if compiled():
        original = globals()["__compiled__"].original_argv0
        if original:
            return os.path.basename(original)
    return os.path.basename(argv[0]) if argv else MULTICALL


def route_hashlib_through_openssl(hashlib) -> None:
    """Make hashlib use OpenSSL only: no built-in fallback digests (see the module docstring)."""
    import _hashlib
    for name in BUILTIN_DIGESTS:
        sys.modules[name] = None  # a later import raises ImportError: hashlib.new() has no fallback
    vars(hashlib)["__builtin_constructor_cache"].clear()
    for name in hashlib.algorithms_guaranteed:  # the named constructors bound at import time
        setattr(hashlib, name, getattr(_hashlib, f"openssl_{name}", None) or _refused(name))


class _PatchHashlibOnImport:
    """sys.meta_path entry: hashlib is patched right after its first import, by whoever imports it.

    Not imported eagerly: its import initialises libcrypto, which (with $OPENSSL_CONF set) runs
    the FIPS provider's self-tests - a cost wvdsctl as a plain client should not pay.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "hashlib":
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else finder.find_spec(fullname, path, target)
            if spec is not None:
                sys.meta_path.remove(self)
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader:
    def __init__(self, inner):
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        route_hashlib_through_openssl(module)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def openssl_only_hashlib() -> None:
    if "hashlib" in sys.modules:
        route_hashlib_through_openssl(sys.modules["hashlib"])
    elif not any(isinstance(f, _PatchHashlibOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchHashlibOnImport())


def _refused(name: str):
    """Constructor for a digest hashlib only has built in (BLAKE2): not available."""
    def constructor(*args, **kwargs):
        raise ValueError(f"unsupported hash type {name} (no OpenSSL implementation)")
    return constructor


def mapped_libraries(prefix: str) -> list[str]:
    """Real paths of the shared objects named prefix* mapped into this process."""
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and os.path.basename(fields[5].strip()).startswith(prefix):
                found.add(os.path.realpath(fields[5].strip()))
    return sorted(found)


# Shared objects and Python modules of crypto libraries other than ours: none may be in the process.
FOREIGN_LIBRARIES = ("libgnutls", "libgcrypt", "libnettle", "libhogweed", "libsodium", "libmbedcrypto", "libwolfssl",
                     "libbotan", "libnss3", "libfreebl", "_rust.", "_cffi_backend")
FOREIGN_MODULES = ("cryptography", "cffi", "_cffi_backend", "tpm2_pytss", "nacl", "Crypto", "Cryptodome")


def load_tpm_backend() -> str:
    """Import the TPM key store and engine, which load the device's tpm2-tss: what the service runs with."""
    try:
        import wvds.crypto_service.engines.tpm  # noqa: F401
        import wvds.keystore.tpm  # noqa: F401
    except ImportError as e:
        return f"not installed ({e})"
    return "loaded: " + ", ".join(os.path.basename(p) for p in mapped_libraries("libtss2-"))


def self_check() -> dict:
    """What a delivered binary must hold to; "problems" is empty when it does."""
    import hashlib
    import ssl

    from wvds import ossl
    from wvds.ossl import fips
    problems = []
    out = {"version": VERSION, "compiled": compiled(), "executable": sys.executable,
           "python": sys.version.split()[0], "ssl_module": ssl.OPENSSL_VERSION}
    try:
        info = ossl.load()
        out["openssl"] = info.openssl_version
        out["fips_provider"] = {"version": info.fips_version, "self_test_passed": info.self_test_passed,
                                "fips_default": info.fips_default, "providers": list(info.providers)}
        out["md5_fetchable"] = fips.algorithm_available("digest", "MD5")
        if out["md5_fetchable"]:
            problems.append("OpenSSL fetches MD5 under the default properties")
        if ssl.OPENSSL_VERSION != info.openssl_version:
            problems.append(f"ssl uses {ssl.OPENSSL_VERSION}, wvds.ossl {info.openssl_version}")
    except ossl.OsslError as e:
        problems.append(f"FIPS provider not available: {e}")
    for name in ("md5", "blake2b"):
        for how, call in (("new", lambda: hashlib.new(name, b"x")), ("constructor", lambda: getattr(hashlib, name)())):
            try:
                call().hexdigest()
                out[f"{name}_hashlib_{how}"] = "computed"
                problems.append(f"hashlib computes {name} ({how})")
            except ValueError as e:
                out[f"{name}_hashlib_{how}"] = f"refused ({e})"
    out["sha256_hashlib"] = type(hashlib.sha256()).__module__ + "." + type(hashlib.sha256()).__name__
    if not out["sha256_hashlib"].startswith("_hashlib."):
        problems.append(f"hashlib.sha256 is {out['sha256_hashlib']}, not OpenSSL's")
    out["tpm_backend"] = load_tpm_backend()
    out["foreign_crypto_libraries"] = [p for prefix in FOREIGN_LIBRARIES for p in mapped_libraries(prefix)]
    out["foreign_crypto_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in FOREIGN_MODULES)
    for what in ("foreign_crypto_libraries", "foreign_crypto_modules"):
        if out[what]:
            problems.append(f"another crypto library in the process: {out[what]}")
    out["libcrypto"] = mapped_libraries("libcrypto.so")
    out["libssl"] = mapped_libraries("libssl.so")
    for lib in ("libcrypto", "libssl"):
        if len(out[lib]) != 1:
            problems.append(f"{len(out[lib])} {lib} files mapped: {out[lib]}")
        elif compiled() and out[lib][0] != shipped_beside_executable(out[lib][0]):
            problems.append(f"{lib} {out[lib][0]} is not the one shipped beside {sys.executable}")
    if not out.get("openssl", "").startswith("OpenSSL 3.6."):
        problems.append(f"libcrypto is {out.get('openssl')!r}, not OpenSSL 3.6")
    out["problems"] = problems
    return out


def shipped_beside_executable(mapped: str) -> str:
    """The file of that name beside the executable, resolved: in the delivery, bin/<arch>/libcrypto.so.3
    is a link to lib/<arch>/libcrypto.so.3, and /proc/self/maps names the link's target."""
    exe_dir = os.path.dirname(os.path.realpath(sys.executable))
    return os.path.realpath(os.path.join(exe_dir, os.path.basename(mapped)))


def program_main(program: str):
    """The program's main(argv) -> int. Plain import statements, so that Nuitka sees and compiles all three."""
    if program == "wvds_crypto_service":
        from wvds.crypto_service.main import main
    elif program == "wvds_est_service":
        from wvds.est_service.main import main
    elif program == "wvdsctl":
        from wvds.cli.wvdsctl import main
    else:
        raise KeyError(program)
    return main


def usage() -> str:
    return (f"usage: {MULTICALL} PROGRAM [ARGS...]   (or start it as PROGRAM)\n"
            f"       {MULTICALL} --version | --self-check\n"
            f"programs: {', '.join(PROGRAMS)}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    program = invoked_as(argv)
    args = argv[1:]
    openssl_only_hashlib()
    if program not in PROGRAMS:  # started as wvds, python -m wvds, or under another name
        if not args or args[0] not in PROGRAMS:
            if args[:1] == ["--version"]:
                print(version_text(MULTICALL))
                return 0
            if args[:1] == ["--self-check"]:
                report = self_check()
                print(json.dumps(report, indent=2))
                return 1 if report["problems"] else 0
            print(usage(), file=sys.stderr)
            return 2
        program, args = args[0], args[1:]
    # argv[0] stays the executable's path (wvds.native finds the C library relative to it); each program's
    # argparse names itself, and gets its arguments explicitly
    sys.argv = [argv[0], *args]
    if "--version" in args:
        print(version_text(program))
        return 0
    return program_main(program)(args)


if __name__ == "__main__":
    sys.exit(main())
