"""install.sh on this machine with --prefix: install, run, upgrade in place, roll back, uninstall, and every failure."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from packaging_support import (Installed, InstalledService, build_gateway, copy_delivery, install, make_version,
                               rewrite_sums, run_gateway, uname_shim, wvdsctl)
from support.targets import ROOT


def tree_digest(path: Path) -> str:
    """A digest over every file below path (names, modes, contents)."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_symlink():
            h.update(os.readlink(p).encode())
        elif p.is_file():
            h.update(oct(p.stat().st_mode).encode() + p.read_bytes())
    return h.hexdigest()


def ctl_json(inst: Installed, *args: str) -> dict:
    r = wvdsctl(inst, "--json", *args)
    assert r.returncode == 0, f"wvdsctl {' '.join(args)}: {r.stdout}{r.stderr}"
    return json.loads(r.stdout)


@pytest.fixture
def good(unpacked, tmp_path, host_arch):
    """A fresh prefix with the delivery installed."""
    inst = Installed(tmp_path / "prefix", host_arch)
    install(unpacked, "--prefix", str(inst.prefix))
    return inst


def test_fresh_install(good, unpacked, delivery):
    inst = good
    release = inst.release()
    sums = (unpacked / "SHA256SUMS").read_bytes()
    assert release == f"releases/{delivery.version}-{hashlib.sha256(sums).hexdigest()[:12]}"
    rel = inst.opt / release
    # only this machine's architecture, plus the common files; the FIPS configuration made here
    assert sorted(p.name for p in (rel / "bin").iterdir()) == [inst.arch]
    assert sorted(p.name for p in (rel / "lib").iterdir()) == [inst.arch]
    fipsmodule = rel / "lib" / inst.arch / "fipsmodule.cnf"
    assert "module-mac" in fipsmodule.read_text()
    for name in ("README_OEM.md", "WvdS_KB_OEM.md", "install.sh", "include/wvds_crypto.h", "certs/root_ca.pem",
                 "scripts/extract_certs.py", "config/crypto_service.json", "SHA256SUMS"):
        assert (rel / name).is_file(), name
    assert os.readlink(inst.opt / "bin" / "openssl") == f"../current/bin/{inst.arch}/openssl"
    # openssl.cnf: FIPS + base, fips=yes, through the current link
    cnf = (inst.etc / "ssl" / "openssl.cnf").read_text()
    assert f".include {inst.current}/lib/{inst.arch}/fipsmodule.cnf" in cnf
    assert f"module = {inst.current}/lib/{inst.arch}/fips.so" in cnf
    assert "default_properties = fips=yes\n" in cnf and "activate = 1" in cnf and "wvds_sect" not in cnf
    wvds_cnf = inst.etc / "ssl" / "openssl-wvds.cnf"
    assert wvds_cnf.exists() == (rel / "lib" / inst.arch / "wvds.so").exists()
    if wvds_cnf.exists():
        text = wvds_cnf.read_text()
        assert f"module = {inst.current}/lib/{inst.arch}/wvds.so" in text
        assert "default_properties = fips=yes,?provider!=wvds" in text and "wvds = wvds_sect" in text
    # the key store secret: 32 random bytes, 0600
    secret = inst.etc / "keystore.secret"
    assert len(secret.read_bytes()) == 32 and stat.S_IMODE(secret.stat().st_mode) == 0o600
    for d in ("keystore", "est"):
        assert stat.S_IMODE((inst.var / d).stat().st_mode) == 0o700
    # the configuration points into the installation and admits this user
    cfg = json.loads((inst.etc / "crypto_service.json").read_text())
    assert cfg["access"] == {"allow_uids": [os.getuid()], "allow_gids": [os.getgid()]}
    assert cfg["keystore"]["directory"] == str(inst.var / "keystore")
    assert cfg["openssl"]["config"] == str(inst.etc / "ssl" / "openssl.cnf")
    assert cfg["socket"]["path"] == str(inst.prefix / "run" / "wvds" / "crypto.sock")
    units = inst.prefix / "etc" / "systemd" / "system"
    assert f"ExecStart={inst.opt}/bin/wvds_crypto_service --config {inst.etc}/crypto_service.json" in \
        (units / "wvds-crypto.service").read_text()


def test_installed_program_passes_its_self_check(good, delivery):
    """In the installed layout bin/<arch>/libcrypto.so.3 is a link into lib/<arch>/: still exactly one
    libcrypto, ours, FIPS with fips=yes, MD5 refused (wvds --self-check)."""
    if not delivery.has_binaries(good.arch):
        pytest.skip("no native programs in this delivery")
    r = subprocess.run([str(good.current / "bin" / good.arch / "wvds"), "--self-check"], env=good.env(),
                       capture_output=True, text=True, timeout=120)
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["problems"] == [], r.stdout + r.stderr
    assert report["libcrypto"] == [str((good.lib / "libcrypto.so.3").resolve())]


def test_installed_configurations_are_valid(good, tmp_path):
    """crypto_service accepts its installed config as it is; est_service's needs only the site's files."""
    sys.path.insert(0, str(ROOT / "src"))
    from wvds.crypto_service import config as crypto_config
    from wvds.est_service import config as est_config
    from wvds.est_service.errors import ConfigError
    cfg = crypto_config.load(str(good.etc / "crypto_service.json"))
    assert cfg.keystore["backend"] == "file"
    with pytest.raises(ConfigError) as e:
        est_config.load(str(good.etc / "est_service.json"))
    problems = [line for line in str(e.value).splitlines()]
    assert all("file not found" in p for p in problems), problems  # trust anchor and password file: the OEM's
    (good.etc / "est" / "trust-anchor.pem").write_text("-")
    (good.etc / "est" / "bootstrap.pw").write_text("pw\n")
    est = est_config.load(str(good.etc / "est_service.json"))
    assert est.state_dir == str(good.var / "est") and est.crypto_socket == str(good.socket)
    # the backend examples of the delivery are valid too (paths aside)
    for name in ("crypto_service-tpm.json", "crypto_service-pkcs11.json"):
        doc = json.loads((good.current / "config" / name).read_text())
        assert crypto_config.parse(doc, name).keystore["backend"] in ("tpm", "pkcs11")


@pytest.mark.slow
def test_run_upgrade_rollback_uninstall(unpacked, tmp_path, host_arch, delivery):
    """The whole life of an installation; keys, secret and an edited config survive every step."""
    inst = Installed(tmp_path / "prefix", host_arch)
    install(unpacked, "--prefix", str(inst.prefix))
    first = inst.release()
    gateway = build_gateway(inst, tmp_path)

    with InstalledService(inst, tmp_path) as svc:
        r = run_gateway(inst, gateway)
        svc.check(r, "the OEM gateway")
        assert "oem_gateway: all steps succeeded" in r.stdout
        status = ctl_json(inst, "status")
        assert status["fips"]["self_test_passed"] and status["fips"]["fips_default_properties"]
        assert "file" in json.dumps(status["keystore"])
        key = ctl_json(inst, "generate", "aes-256-gcm", "--label", "survives")["key_id"]
        (tmp_path / "plain").write_bytes(b"kept across upgrades")
        r = wvdsctl(inst, "--out", str(tmp_path / "sealed"), "encrypt", key, "--in", str(tmp_path / "plain"))
        assert r.returncode == 0, r.stdout + r.stderr

    # the operator edits the config; then a newer release arrives
    cfg_path = inst.etc / "crypto_service.json"
    edited = cfg_path.read_text().replace('"level": "info"', '"level": "debug"')
    cfg_path.write_text(edited)
    secret = (inst.etc / "keystore.secret").read_bytes()
    keys_before = tree_digest(inst.var / "keystore")
    newer = make_version(copy_delivery(unpacked, tmp_path / "newer"), "0.2.1")
    r = install(newer, "--prefix", str(inst.prefix))
    second = inst.release()
    assert second.startswith("releases/0.2.1-") and second != first
    assert os.readlink(inst.opt / "previous") == first
    assert (inst.opt / first).is_dir(), "the previous release is kept for a rollback"
    assert cfg_path.read_text() == edited, "an edited config is never overwritten"
    assert json.loads((inst.etc / "crypto_service.json.new").read_text())["log"]["level"] == "info"
    assert "kept" in r.stdout and "crypto_service.json.new" in r.stdout
    assert (inst.etc / "keystore.secret").read_bytes() == secret
    assert tree_digest(inst.var / "keystore") == keys_before

    with InstalledService(inst, tmp_path) as svc:
        listed = ctl_json(inst, "list")["keys"]
        assert key in [k["key_id"] for k in listed], "a key made before the upgrade is still there"
        r = wvdsctl(inst, "--out", str(tmp_path / "back"), "decrypt", key, "--in", str(tmp_path / "sealed"))
        assert r.returncode == 0 and (tmp_path / "back").read_bytes() == b"kept across upgrades", r.stderr
        svc.check(run_gateway(inst, gateway), "the OEM gateway after the upgrade")
    # Using the keys changes the store (the decryption above is now in the key's replay window): from here on
    # no installer step may change it.
    keys_before = tree_digest(inst.var / "keystore")

    # the same delivery again: nothing changes
    before = tree_digest(inst.opt)
    r = install(newer, "--prefix", str(inst.prefix))
    assert "already installed" in r.stdout and inst.release() == second
    assert tree_digest(inst.opt) == before

    # rollback: the older delivery's install.sh switches back without copying anything
    r = install(unpacked, "--prefix", str(inst.prefix))
    assert "already installed" in r.stdout and inst.release() == first
    assert os.readlink(inst.opt / "previous") == second

    # uninstall keeps configuration, secret and keys; --purge removes them
    r = install(unpacked, "--prefix", str(inst.prefix), "--uninstall")
    assert not inst.opt.exists()
    assert (inst.etc / "keystore.secret").read_bytes() == secret and tree_digest(inst.var / "keystore") == keys_before
    assert "Kept" in r.stdout
    install(unpacked, "--prefix", str(inst.prefix), "--uninstall", "--purge")
    assert not inst.etc.exists() and not inst.var.exists()


def test_dry_run_changes_nothing(unpacked, tmp_path):
    prefix = tmp_path / "prefix"
    r = install(unpacked, "--prefix", str(prefix), "--dry-run")
    assert "would run" in r.stdout and "fipsinstall" in r.stdout and "Dry run: nothing was changed." in r.stdout
    assert not prefix.exists()


def test_reinstall_keeps_an_existing_secret(good, unpacked):
    secret = good.etc / "keystore.secret"
    secret.write_bytes(b"S" * 40)
    secret.chmod(0o600)
    r = install(unpacked, "--prefix", str(good.prefix))
    assert secret.read_bytes() == b"S" * 40 and "kept" in r.stdout


def failing_install(top: Path, prefix: Path, *args, env=None) -> subprocess.CompletedProcess:
    r = install(top, "--prefix", str(prefix), *args, env=env, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "install.sh: error: " in r.stderr
    assert not list((prefix / "opt" / "wvds" / "releases").glob(".staging-*")), "staging left behind"
    return r


def test_checksum_mismatch_leaves_the_installation_alone(good, unpacked, tmp_path):
    before, current = tree_digest(good.opt), good.release()
    bad = make_version(copy_delivery(unpacked, tmp_path / "bad"), "0.2.9")
    readme = bad / "README_OEM.md"
    readme.write_bytes(readme.read_bytes().replace(b"quick start", b"quick stArt"))
    r = failing_install(bad, good.prefix)
    assert "checksum mismatch" in r.stderr and "README_OEM.md: FAILED" in r.stderr
    assert good.release() == current and tree_digest(good.opt) == before
    (bad / "SHA256SUMS").unlink()
    r = install(bad, "--prefix", str(good.prefix), check=False)
    assert r.returncode == 1 and "SHA256SUMS is missing" in r.stderr


def test_a_modified_installation_is_detected(good, unpacked):
    """Re-running install.sh checks the installed release against its SHA256SUMS and the FIPS module."""
    lib = good.opt / good.release() / "lib" / good.arch / "libl4re_crypto_service.so"
    lib.chmod(0o644)
    lib.write_bytes(lib.read_bytes() + b"\0")
    r = failing_install(unpacked, good.prefix)
    assert "was modified" in r.stderr


def test_a_symbolic_link_out_of_the_release_is_refused(good, unpacked, tmp_path):
    """A link whose target leaves the release would install a file no checksum covers - and that can change
    after the check - even with SHA256SUMS made to match (sha256sum follows the link)."""
    before, current = tree_digest(good.opt), good.release()
    bad = make_version(copy_delivery(unpacked, tmp_path / "bad"), "0.2.7")
    outside = tmp_path / "outside.h"
    outside.write_text("/* not from the delivery */\n")
    header = bad / "include" / "wvds_crypto.h"
    header.unlink()
    header.symlink_to(outside)
    rewrite_sums(bad)  # consistent: the sums follow the link
    r = failing_install(bad, good.prefix)
    assert "symbolic links leave the release" in r.stderr and "include/wvds_crypto.h ->" in r.stderr, r.stderr
    assert good.release() == current and tree_digest(good.opt) == before


def test_a_missing_file_is_a_checksum_failure(unpacked, tmp_path):
    bad = copy_delivery(unpacked, tmp_path / "bad")
    (bad / "include" / "wvds_crypto.h").unlink()
    r = failing_install(bad, tmp_path / "prefix")
    assert "wvds_crypto.h" in r.stderr and "checksum mismatch" in r.stderr


def test_wrong_architecture(unpacked, tmp_path, host_arch):
    r = failing_install(unpacked, tmp_path / "p1", env=uname_shim(tmp_path / "shim-riscv", "riscv64"))
    assert "unsupported architecture 'riscv64'" in r.stderr
    only_host = copy_delivery(unpacked, tmp_path / "only-host")
    other = "aarch64" if host_arch == "x86_64" else "x86_64"
    for d in (only_host / "bin" / other, only_host / "lib" / other):
        shutil.rmtree(d)
    lines = [ln for ln in (only_host / "SHA256SUMS").read_text().splitlines(keepends=True)
             if f"/{other}/" not in ln]
    (only_host / "SHA256SUMS").write_text("".join(lines))
    r = failing_install(only_host, tmp_path / "p2", env=uname_shim(tmp_path / "shim-other", other))
    assert f"this delivery has no files for {other} (it has: {host_arch}" in r.stderr
    assert not (tmp_path / "p2").exists()


def test_fipsinstall_failure_leaves_the_installation_alone(good, unpacked, tmp_path):
    """A FIPS module that cannot be installed on this machine (here: a broken fips.so whose checksum
    matches, i.e. a bad build) is never switched to."""
    before, current = tree_digest(good.opt), good.release()
    bad = make_version(copy_delivery(unpacked, tmp_path / "bad"), "0.2.8")
    fips = bad / "lib" / good.arch / "fips.so"
    fips.write_bytes(fips.read_bytes()[:len(fips.read_bytes()) // 2])
    rewrite_sums(bad)
    r = failing_install(bad, good.prefix)
    assert "fipsinstall failed" in r.stderr
    assert good.release() == current and tree_digest(good.opt) == before
    assert not list((good.opt / "releases").glob("0.2.8-*"))


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root for a small tmpfs")
def test_no_space(unpacked, tmp_path):
    prefix = tmp_path / "small"
    prefix.mkdir()
    script = (f"mount -t tmpfs -o size=4m tmpfs {prefix} && "
              f"exec bash {unpacked}/install.sh --prefix {prefix}")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not enough space" in r.stderr and "nothing was installed" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become another user")
def test_unprivileged_user(unpacked, tmp_path):
    """--prefix works for an ordinary user; without it install.sh asks for root."""
    base = Path(tempfile.mkdtemp(prefix="wvds-unpriv-"))
    try:
        base.chmod(0o755)
        top = copy_delivery(unpacked, base / "delivery")
        prefix = base / "prefix"
        prefix.mkdir()
        os.chown(prefix, 65534, 65534)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(top / "install.sh")]
        r = subprocess.run([*as_nobody], capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
        assert r.returncode == 1 and "run as root (or with --prefix DIR" in r.stderr
        r = subprocess.run([*as_nobody, "--prefix", str(prefix)], capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "TMPDIR": str(prefix)}, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        cfg = json.loads((prefix / "etc/opt/wvds/crypto_service.json").read_text())
        assert cfg["access"] == {"allow_uids": [65534], "allow_gids": [65534]}
        assert (prefix / "var/opt/wvds/keystore").stat().st_uid == 65534
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_usage_errors(unpacked):
    r = install(unpacked, "--bogus", check=False)
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr
    r = install(unpacked, "--purge", "--prefix", "/tmp/x", check=False)
    assert r.returncode == 1 and "--purge goes with --uninstall" in r.stderr
    r = install(unpacked, "--prefix", "/tmp/with space", check=False)
    assert r.returncode == 1 and "--prefix may only contain" in r.stderr
    r = install(unpacked, "--help", check=False)
    assert r.returncode == 0 and "--uninstall" in r.stdout
    r = subprocess.run(["sh", str(unpacked / "install.sh"), "--prefix", "/tmp/wvds-never", "--dry-run"],
                       capture_output=True, text=True)  # started with dash: it re-executes itself with bash
    assert r.returncode == 0 and "Dry run" in r.stdout, r.stdout + r.stderr


def test_shellcheck_clean(unpacked):
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck missing: it is in tools/apt-packages.txt (./run test installs it)")
    r = subprocess.run(["shellcheck", "--shell=bash", str(unpacked / "install.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_systemd_units(good, tmp_path):
    """The rendered units pass systemd-analyze verify and keep the sandbox."""
    units = good.prefix / "etc" / "systemd" / "system"
    for name in ("wvds-crypto.service", "wvds-est.service"):
        text = (units / name).read_text()
        for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
                          "CapabilityBoundingSet=", "SystemCallFilter=@system-service",
                          "SystemCallFilter=~@privileged @resources", "MemoryDenyWriteExecute=yes",
                          "ProtectProc=invisible", "RestrictNamespaces=yes", "UMask=0077"):
            assert f"\n{directive}\n" in text, (name, directive)
        assert f"ReadWritePaths={good.var}/{'keystore' if 'crypto' in name else 'est'}" in text
        assert "User=wvds" in text
    assert "RestrictAddressFamilies=AF_UNIX\n" in (units / "wvds-crypto.service").read_text()
    assert "\nPrivateUsers=yes\n" in (units / "wvds-est.service").read_text()  # not crypto: docs/hardening.md
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    check = tmp_path / "units"
    check.mkdir()
    for name in ("wvds-crypto.service", "wvds-est.service"):
        text = (units / name).read_text()
        if not (good.opt / "bin" / "wvds_crypto_service").exists():  # no daemons in this delivery: syntax only
            text = "\n".join("ExecStart=/bin/true" if ln.startswith("ExecStart=") else
                             "ExecStartPre=/bin/true" if ln.startswith("ExecStartPre=") else ln
                             for ln in text.splitlines())
        (check / name).write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", *(str(p) for p in sorted(check.iterdir()))],
                       capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r.stdout + r.stderr
    for name, limit in (("wvds-crypto.service", 0.5), ("wvds-est.service", 1.2)):  # docs/hardening.md
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(check / name)],
                           capture_output=True, text=True)
        level = float(r.stdout.rsplit("Overall exposure level for", 1)[1].split(":")[1].split()[0])
        assert level <= limit, (name, level)


@pytest.mark.slow
def test_est_service_enrolls_with_the_installed_configuration(unpacked, tmp_path, host_arch):
    """The installed est_service.json, completed as KB section 8 says, enrolls against the test EST server."""
    from support.est import EstServer
    inst = Installed(tmp_path / "prefix", host_arch)
    install(unpacked, "--prefix", str(inst.prefix))
    server = EstServer(tmp_path / "est-server").start()
    try:
        shutil.copy(server.root_pem, inst.etc / "est" / "trust-anchor.pem")
        pw = inst.etc / "est" / "bootstrap.pw"
        pw.write_text("est-pass\n")
        pw.chmod(0o600)
        cfg_path = inst.etc / "est_service.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["servers"]["factory"]["url"] = f"https://localhost:{server.port}"
        cfg["servers"]["factory"]["auth"]["bootstrap"]["username"] = "est"
        cfg_path.write_text(json.dumps(cfg, indent=2))
        with InstalledService(inst, tmp_path):
            native = inst.opt / "bin" / "wvds_est_service"
            if native.exists():
                cmd, env = [str(native)], inst.env()
            else:
                cmd = [sys.executable, "-m", "wvds.est_service"]
                env = inst.env(PYTHONPATH=str(ROOT / "src"), LD_LIBRARY_PATH=str(inst.lib),
                               WVDS_CLIENT_LIB=str(inst.lib / "libl4re_crypto_service.so"))
            r = subprocess.run([*cmd, "--config", str(cfg_path), "once"], env=env, capture_output=True, text=True,
                               timeout=180, cwd=tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
            r = subprocess.run([*cmd, "--config", str(cfg_path), "status"], env=env, capture_output=True, text=True,
                               timeout=60, cwd=tmp_path)
            assert r.returncode == 0 and "[valid]" in r.stdout, r.stdout + r.stderr
            # re-enrollment authenticated by the current certificate: the installed openssl-wvds.cnf
            # loads the delivered wvds provider, the TLS signature is made by crypto_service
            server.control(require_client_cert=["simplereenroll"])
            r = subprocess.run([*cmd, "--config", str(cfg_path), "once", "--force"], env=env, capture_output=True,
                               text=True, timeout=180, cwd=tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
            posts = server.requests("simplereenroll")
            assert posts and posts[-1]["authenticated_by"] == "client_cert", posts
    finally:
        server.stop()
    cert = inst.var / "est" / "certs" / "device" / "current" / "cert.pem"
    r = subprocess.run([sys.executable, str(inst.current / "scripts" / "extract_certs.py"), "verify", "--ca",
                        str(inst.etc / "est" / "trust-anchor.pem"), str(cert)], capture_output=True, text=True,
                       env=inst.env())
    assert r.returncode == 0 and "CN=gw-0001" in r.stdout, r.stdout + r.stderr
