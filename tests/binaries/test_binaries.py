"""What the native binaries promise beyond the functional suite: the programs behind one executable,
our OpenSSL 3.6.3 with the FIPS provider as the only libcrypto, hashlib without MD5, versions, hardening."""
from __future__ import annotations

import json
import subprocess

import pytest

from support.binaries import bin_dir, build_info
from support.service import ServiceProcess, base_config
from support.targets import ELF_MACHINE, HOST, elf_machine
from wvds.client import Client
from wvds.programs import PROGRAMS
from wvds.version import VERSION

# Each architecture's binaries only (--arch selects); the functional suite runs against them from the
# modules marked `binaries` in tests/service, tests/keystore and tests/conformance.
pytestmark = pytest.mark.binaries(source=False)


def run(programs, env, *argv, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(programs.argv(*argv), env=programs.env(env), capture_output=True, text=True,
                          timeout=timeout)


def test_one_executable_for_the_target_behind_three_names(programs):
    folder = bin_dir(programs.target.arch)
    assert elf_machine(folder / "wvds") == ELF_MACHINE[programs.target.arch]
    for name in PROGRAMS:
        assert (folder / name).resolve() == (folder / "wvds").resolve()
    info = build_info(programs.target.arch)
    assert info["files"]["wvds"]["size"] == (folder / "wvds").stat().st_size
    for lib in ("libcrypto.so.3", "libssl.so.3"):  # the product's OpenSSL build, byte for byte
        assert (folder / lib).read_bytes() == (programs.target.openssl_root / "lib" / lib).read_bytes()


@pytest.mark.parametrize("program", PROGRAMS)
def test_version_names_product_openssl_and_fips_state(programs, fips_env, program):
    r = run(programs, fips_env, program, "--version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{program} {VERSION} (native build")
    assert lines[1].startswith("OpenSSL 3.6.3 ")
    assert lines[2].startswith("FIPS provider 3.6.3 (self-test passed, fips=yes default)"), r.stdout
    assert "WARNING" not in r.stdout


def test_version_without_fips_configuration_says_so(programs):
    r = run(programs, {"PATH": "/usr/bin:/bin"}, "wvdsctl", "--version")
    assert r.returncode == 0, r.stderr
    assert "OpenSSL 3.6.3" in r.stdout and "FIPS provider: not available" in r.stdout


def test_self_check_one_libcrypto_ours_md5_refused(programs, fips_env):
    """Inside the binary: ssl, hashlib, wvds.ossl and - with the TPM backend loaded - the machine's tpm2-tss
    share one libcrypto, the one shipped beside it (read from /proc/self/maps), and no other crypto library
    or module is in the process; hashlib refuses MD5 and BLAKE2 instead of falling back to built-ins."""
    r = run(programs, fips_env, "wvds", "--self-check")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["problems"] == [], report
    assert report["compiled"] is True
    assert report["ssl_module"].startswith("OpenSSL 3.6.3") and report["openssl"] == report["ssl_module"]
    assert report["libcrypto"] == [str((bin_dir(programs.target.arch) / "libcrypto.so.3").resolve())]
    assert report["md5_hashlib_constructor"].startswith("refused") and report["md5_fetchable"] is False
    assert report["fips_provider"]["providers"] == ["base", "fips"]
    assert report["foreign_crypto_libraries"] == [] and report["foreign_crypto_modules"] == []
    if programs.target.arch == "x86_64":  # this machine's tpm2-tss (the aarch64 userland has none)
        assert report["tpm_backend"].startswith("loaded: libtss2-esys"), report["tpm_backend"]


def test_running_service_maps_only_our_libcrypto(programs, fips_env, tmp_path):
    """Seen from outside: the service's memory map holds exactly one libcrypto and one libssl, ours,
    although the machine (and, for aarch64, the Debian userland qemu-user runs it on) has its own."""
    folder = bin_dir(programs.target.arch).resolve()
    with ServiceProcess(HOST, fips_env, tmp_path, base_config(tmp_path), programs=programs) as svc:
        with Client(svc.socket) as c:
            assert c.status()["fips"]["self_test_passed"] is True
        maps = open(f"/proc/{svc.proc.pid}/maps").read()
    mapped = {line.split(maxsplit=5)[5] for line in maps.splitlines() if len(line.split(maxsplit=5)) == 6}
    crypto = {p for p in mapped if "libcrypto" in p}
    ssl = {p for p in mapped if "libssl" in p}
    assert crypto == {str(folder / "libcrypto.so.3")}, crypto
    assert ssl <= {str(folder / "libssl.so.3")}, ssl


def test_the_program_is_hardened_like_every_other_c_object(programs):
    """Nuitka's C gets toolchains/hardening.mk too (packaging/binaries/build_binary.py): full RELRO,
    stack protector, fortified libc calls, PIE."""
    exe = str(bin_dir(programs.target.arch) / "wvds")
    dyn = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True, check=True).stdout
    assert "BIND_NOW" in dyn and "NOW PIE" in dyn  # -z now, -pie
    assert "GNU_RELRO" in subprocess.run(["readelf", "-lW", exe], capture_output=True, text=True, check=True).stdout
    undefined = subprocess.run(["nm", "-D", "--undefined-only", exe], capture_output=True, text=True,
                               check=True).stdout
    assert "__stack_chk_fail" in undefined  # -fstack-protector-strong
    assert "__memcpy_chk" in undefined  # -D_FORTIFY_SOURCE=2


def test_no_python_sources_shipped(programs):
    """The delivery ships compiled programs: no .py of ours (or anyone's) in the folder."""
    folder = bin_dir(programs.target.arch)
    assert not [p for p in folder.rglob("*.py")]
    assert not (folder / "wvds").read_bytes().count(b"def route_hashlib_through_openssl")


def test_est_service_binary_checks_its_config(programs, fips_env, tmp_path):
    r = run(programs, fips_env, "wvds_est_service", "--config", tmp_path / "missing.json", "check-config")
    assert r.returncode == 2 and "missing.json" in r.stderr, r.stderr


def test_multicall_usage_and_dispatch(programs, fips_env):
    r = run(programs, fips_env, "wvds")
    assert r.returncode == 2 and ", ".join(PROGRAMS) in r.stderr
    r = run(programs, fips_env, "wvds", "wvdsctl", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: wvdsctl")



def test_wvdsctl_finds_the_c_library_beside_itself(programs, fips_env, service):
    """No WVDS_CLIENT_LIB: the binary looks beside its own folder (build/<arch>/clib here, lib/<arch> installed)."""
    env = {k: v for k, v in fips_env.items() if k != "WVDS_CLIENT_LIB"}
    r = run(programs, env, "wvdsctl", "--socket", service.socket, "--json", "status")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == VERSION
