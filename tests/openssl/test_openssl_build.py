"""The OpenSSL 3.6.3 + FIPS provider build, for each architecture (aarch64 under qemu-user)."""
import re
import subprocess
from pathlib import Path

import pytest

from support.targets import ELF_MACHINE, elf_machine

SHIPPED = ["bin/openssl", "lib/libcrypto.so.3", "lib/libssl.so.3", "lib/ossl-modules/fips.so"]
PQC = ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87", "ML-KEM-512", "ML-KEM-768", "ML-KEM-1024"]


@pytest.fixture(scope="module")
def fips_env(target, fips_envs):
    """target's FIPS environment (not the programs under test's, as tests/conftest.py's fips_env)."""
    return fips_envs.env(target)


def openssl(target, *args, env, check=True, input=None):
    r = target.run(target.openssl_root / "bin" / "openssl", *args, env=env, check=False, input=input)
    if check:
        assert r.returncode == 0, f"openssl {' '.join(map(str, args))} failed:\n{r.stderr.decode(errors='replace')}"
    return r


def test_version_is_3_6_3(target):
    out = openssl(target, "version", "-a", env=target.env()).stdout.decode()
    assert out.startswith("OpenSSL 3.6.3 "), out
    # Compiled-in paths are the device's install paths, never this machine's build tree.
    assert 'OPENSSLDIR: "/etc/opt/wvds/ssl"' in out, out
    assert 'MODULESDIR: "/opt/wvds/lib/ossl-modules"' in out, out


def test_files_are_built_for_the_target_architecture(target):
    for rel in SHIPPED:
        assert elf_machine(target.openssl_root / rel) == ELF_MACHINE[target.arch], rel


def test_libraries_resolve_inside_the_build_only(target):
    """RUNPATHs are $ORIGIN-relative, so the host's libcrypto can never be picked up."""
    for rel, runpath in [("bin/openssl", "$ORIGIN/../lib"), ("lib/libssl.so.3", "$ORIGIN")]:
        dyn = subprocess.run(["readelf", "-d", target.openssl_root / rel], capture_output=True, text=True,
                             check=True).stdout
        assert f"Library runpath: [{runpath}]" in dyn, dyn
    if target.native:
        ldd = subprocess.run(["ldd", target.openssl_root / "bin" / "openssl"], capture_output=True, text=True,
                             check=True, env=target.env()).stdout
        libdir = (target.openssl_root / "lib").resolve()
        for lib in ("libcrypto.so.3", "libssl.so.3"):
            line = next(li for li in ldd.splitlines() if lib in li)
            resolved = Path(line.split("=>")[1].split("(")[0].strip()).resolve()
            assert resolved.parent == libdir, line


def test_fips_provider_is_active_and_only_provider_besides_base(target, fips_env):
    out = openssl(target, "list", "-providers", "-verbose", env=fips_env).stdout.decode()
    assert re.search(r"fips\s*\n\s*name: OpenSSL FIPS Provider\s*\n\s*version: 3\.6\.3", out), out
    assert "status: active" in out
    names = re.findall(r"^  (\w+)\s*$", out, re.M)
    assert sorted(names) == ["base", "fips"], out


@pytest.mark.parametrize("kind,algs", [("-signature-algorithms", PQC[:3]), ("-kem-algorithms", PQC[3:])])
def test_pqc_algorithms_come_from_the_fips_provider(target, fips_env, kind, algs):
    out = openssl(target, "list", kind, env=fips_env).stdout.decode()
    for alg in algs:
        assert re.search(rf"\b{alg}\b[^\n]*@ fips", out), f"{alg} not offered by the FIPS provider:\n{out}"


def test_approved_operations_work(target, fips_env, tmp_path):
    assert "SHA2-256" in openssl(target, "dgst", "-sha256", env=fips_env, input=b"x").stdout.decode()
    key, pub, sig, msg = (tmp_path / n for n in ("k.pem", "p.pem", "s.bin", "m.txt"))
    msg.write_bytes(b"sensor reading 42")
    openssl(target, "genpkey", "-algorithm", "ML-DSA-65", "-out", key, env=fips_env)
    openssl(target, "pkey", "-in", key, "-pubout", "-out", pub, env=fips_env)
    openssl(target, "pkeyutl", "-sign", "-inkey", key, "-in", msg, "-out", sig, env=fips_env)
    ok = openssl(target, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", msg, "-sigfile", sig, env=fips_env)
    assert b"Signature Verified Successfully" in ok.stdout
    msg.write_bytes(b"sensor reading 43")
    bad = openssl(target, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", msg, "-sigfile", sig,
                  env=fips_env, check=False)
    assert bad.returncode != 0


def test_ml_kem_round_trip(target, fips_env, tmp_path):
    key, pub, ct, ss1, ss2 = (tmp_path / n for n in ("k.pem", "p.pem", "ct", "ss1", "ss2"))
    openssl(target, "genpkey", "-algorithm", "ML-KEM-768", "-out", key, env=fips_env)
    openssl(target, "pkey", "-in", key, "-pubout", "-out", pub, env=fips_env)
    openssl(target, "pkeyutl", "-encap", "-pubin", "-inkey", pub, "-out", ct, "-secret", ss1, env=fips_env)
    openssl(target, "pkeyutl", "-decap", "-inkey", key, "-in", ct, "-secret", ss2, env=fips_env)
    assert len(ss1.read_bytes()) == 32 and ss1.read_bytes() == ss2.read_bytes()


@pytest.mark.parametrize("args", [
    ["dgst", "-md5"],
    ["enc", "-chacha20", "-K", "00" * 32, "-iv", "00" * 16],
    ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
], ids=["md5", "chacha20", "rsa-1024-keygen"])
def test_non_approved_operations_are_refused(target, fips_env, args):
    r = openssl(target, *args, env=fips_env, check=False, input=b"x")
    assert r.returncode != 0, f"openssl {' '.join(args)} succeeded in FIPS mode"
    # ...and they work without the FIPS configuration, so it is FIPS mode that refuses them.
    assert openssl(target, *args, env=target.env(), check=False, input=b"x").returncode == 0
