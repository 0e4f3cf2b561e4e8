"""The delivery on each architecture's Debian 12: install.sh, then the service and the OEM gateway.

Where packaging/sysroot has built the Debian 12 root of an architecture (the binaries
build makes them; cached under $WVDS_CACHE/sysroot), install.sh runs *inside* it - a
minimal Debian 12 userland, arm64 under qemu-user - with --prefix below a directory
bound into the root. Where the root is not there yet, install.sh runs on this machine
with --prefix, aarch64 under qemu-user (uname and the FIPS self-tests included).

The service is the delivery's native program when the delivery has one for the
architecture (run in the root, or here under qemu-user); otherwise the service of
an x86_64 installation runs from source, and the architecture's gateway - built
against its own installation - talks to it (aarch64 under qemu-user, over the same
shared memory).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from packaging_support import (Installed, InstalledService, build_gateway, install, run_gateway, uname_shim,
                               wvdsctl)

ARCHS = ("x86_64", "aarch64")
GUEST_OUT = "/wvds/out"


def debian_root(arch: str) -> Path | None:
    """The cached Debian 12 root of arch, if it is complete (and we may enter it: root only)."""
    from sysroot import debian_root as dr
    if os.geteuid() != 0:
        return None
    cache = Path(os.environ.get("WVDS_CACHE") or Path.home() / ".cache" / "wvds")
    root = dr.root_path(arch, cache)
    return root if (root / ".complete").exists() else None


class RootInstall:
    """An installation inside a Debian root: the host sees it below out/, the root below /wvds/out."""

    def __init__(self, root: Path, arch: str, delivery_dir: Path, out: Path):
        from sysroot import chroot
        self.chroot, self.root, self.arch, self.out = chroot, root, arch, out
        self.binds = [chroot.Bind(delivery_dir, "/wvds/src"), chroot.Bind(out, GUEST_OUT, True)]
        self.guest = Installed(Path(GUEST_OUT) / "p", arch)  # paths as the root sees them
        self.host = Installed(out / "p", arch)  # the same files seen from here

    def run(self, argv: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        cmd = self.chroot.command(self.root, argv, binds=self.binds, env=env)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def popen(self, argv: list[str], env: dict, log) -> subprocess.Popen:
        cmd = self.chroot.command(self.root, argv, binds=self.binds, env=env)
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def host_service(unpacked, tmp_path_factory, host_arch):
    """An x86_64 installation on this machine with its crypto_service running (native or from source)."""
    work = tmp_path_factory.mktemp("host-install")
    inst = Installed(work / "p", host_arch)
    install(unpacked, "--prefix", str(inst.prefix))
    with InstalledService(inst, work) as svc:
        yield svc


def wait_ready(log: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_bytes().decode(errors="replace") if log.exists() else ""
        if "crypto_service ready" in text:
            return
        if proc.poll() is not None:
            raise AssertionError(f"service exited with {proc.returncode}:\n{text}")
        time.sleep(0.2)
    raise AssertionError(f"service not ready after {timeout} s:\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_install_and_run(arch, delivery, unpacked, tmp_path, host_arch, request):
    root = debian_root(arch)
    if root is not None:
        where = RootInstall(root, arch, unpacked, tmp_path)
        r = where.run(["bash", "/wvds/src/install.sh", "--prefix", str(where.guest.prefix)])
        inst, guest = where.host, where.guest
    else:
        where, guest = None, None
        inst = Installed(tmp_path / "p", arch)
        env = uname_shim(tmp_path / "shim", arch) if arch != host_arch else None
        r = install(unpacked, "--prefix", str(inst.prefix), env=env, check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert f"for {arch} ->" in out and "FIPS module installed and verified" in out, out
    assert (inst.current / "lib" / arch / "fipsmodule.cnf").is_file()

    if delivery.has_binaries(arch):
        gateway = build_gateway(inst, tmp_path, rpath=(guest or inst).lib)
        _native_service_and_gateway(inst, guest, where, gateway, tmp_path)
    else:  # no daemon for this architecture: its gateway against the host installation's service
        svc = request.getfixturevalue("host_service")
        gateway = build_gateway(inst, tmp_path)
        r = subprocess.run([str(gateway), str(svc.inst.socket)], env=inst.env(), capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0 and "oem_gateway: all steps succeeded" in r.stdout, r.stdout + r.stderr


def _native_service_and_gateway(inst: Installed, guest: Installed | None, where: RootInstall | None,
                                gateway: Path, tmp_path: Path) -> None:
    """The delivery's own crypto_service (in the root, or here), the gateway and wvdsctl against it."""
    log = tmp_path / "service.log"
    with open(log, "ab") as f:
        if guest is not None:
            proc = where.popen([str(guest.opt / "bin" / "wvds_crypto_service"), "--config",
                                str(guest.etc / "crypto_service.json")],
                               {"OPENSSL_CONF": str(guest.etc / "ssl" / "openssl.cnf")}, f)
        else:
            proc = subprocess.Popen([str(inst.opt / "bin" / "wvds_crypto_service"), "--config",
                                     str(inst.etc / "crypto_service.json")], env=inst.env(), stdout=f,
                                    stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_ready(log, proc)
        if guest is not None:
            env = {"OPENSSL_CONF": str(guest.etc / "ssl" / "openssl.cnf")}
            r = where.run([f"{GUEST_OUT}/{gateway.relative_to(tmp_path)}", str(inst.socket)])
            st = where.run([str(guest.opt / "bin" / "wvdsctl"), "--socket", str(inst.socket), "--json", "status"],
                           env=env)
        else:
            r = run_gateway(inst, gateway)
            st = wvdsctl(inst, "--json", "status")
        service_log = log.read_bytes().decode(errors="replace")[-3000:]
        assert r.returncode == 0 and "oem_gateway: all steps succeeded" in r.stdout, \
            f"{r.stdout}{r.stderr}\n--- service log ---\n{service_log}"
        assert st.returncode == 0, f"{st.stdout}{st.stderr}\n--- service log ---\n{service_log}"
        status = json.loads(st.stdout)
        assert status["fips"]["self_test_passed"] and status["fips"]["fips_default_properties"]
    finally:
        stop(proc)


PRIVILEGED_STEPS = r"""
set -eu
bash /wvds/src/install.sh
echo "== users"; id wvds; id wvds-est
echo "== modes"
stat -c '%n %U:%G %a' /etc/opt/wvds /etc/opt/wvds/keystore.secret /etc/opt/wvds/crypto_service.json \
    /var/opt/wvds/keystore /var/opt/wvds/est /etc/opt/wvds/est /run/wvds
echo "== gid $(getent group wvds | cut -d: -f3)"
grep allow_ /etc/opt/wvds/crypto_service.json
if [ -e /opt/wvds/bin/wvds_crypto_service ]; then
    # as README_OEM.md / install.sh say without systemd; a gateway user whose primary group is wvds
    runuser -u wvds -- env OPENSSL_CONF=/etc/opt/wvds/ssl/openssl.cnf \
        /opt/wvds/bin/wvds_crypto_service --config /etc/opt/wvds/crypto_service.json > /wvds/out/service.log 2>&1 &
    svc=$!
    for _ in $(seq 1 300); do grep -q "crypto_service ready" /wvds/out/service.log && break; sleep 0.2; done
    useradd --gid wvds --create-home gw
    A=$(uname -m)
    gcc -O2 -I/opt/wvds/current/include -o /home/gw/oem_gateway /opt/wvds/current/examples/oem_gateway.c \
        -L/opt/wvds/current/lib/$A -ll4re_crypto_service -Wl,-rpath,/opt/wvds/current/lib/$A
    echo "== gateway"; runuser -u gw -- /home/gw/oem_gateway
    useradd --create-home stranger
    echo "== stranger"; runuser -u stranger -- /home/gw/oem_gateway 2>&1 || echo "refused: $?"
    kill "$svc"; wait "$svc" || true
fi
echo "== uninstall"
bash /opt/wvds/current/install.sh --uninstall
test ! -e /opt/wvds && test -e /etc/opt/wvds/keystore.secret && test -d /var/opt/wvds/keystore
bash /wvds/src/install.sh --uninstall --purge
if id wvds 2>/dev/null || test -e /etc/opt/wvds || test -e /var/opt/wvds; then echo "purge incomplete"; exit 1; fi
echo "== done"
"""


def run_in_overlay(root: Path, tmp_path: Path, steps: str, binds: dict) -> tuple[subprocess.CompletedProcess, Path]:
    """Run a bash script as root in a throw-away writable overlay over a cached Debian root.

    binds: guest mount point -> host directory (read-only); /wvds/out is a writable host directory.
    """
    upper, work, merged, out = (tmp_path / n for n in ("upper", "work", "merged", "out"))
    for d in (upper, work, merged, out):
        d.mkdir()
    lines = ["set -e",
             f"mount -t overlay overlay -o lowerdir={root},upperdir={upper},workdir={work} {merged}",
             f"mount -t proc proc {merged}/proc",
             f"mount --rbind /dev {merged}/dev",
             f"mount -t tmpfs -o mode=1777 tmpfs {merged}/tmp"]
    for guest, host in binds.items():
        lines += [f"mount --bind {host} {merged}{guest}", f"mount -o remount,bind,ro {merged}{guest}"]
    lines += [f"mount --bind {out} {merged}/wvds/out",
              f'exec chroot {merged} /usr/bin/env -i PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin '
              f'LANG=C.UTF-8 bash -c "$0"']
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines), steps],
                       capture_output=True, text=True, timeout=900)
    return r, out


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (an overlay of the Debian root, users)")
def test_privileged_install_in_debian_root(delivery, unpacked, tmp_path, host_arch):
    """install.sh as root without --prefix on a fresh Debian 12 (a throw-away overlay over the cached
    root; no systemd there): users, ownership and modes, the service started by hand as README_OEM.md
    says, a gateway user of group wvds admitted and another user refused, uninstall and purge."""
    root = debian_root(host_arch)
    if root is None:
        pytest.skip(f"the Debian 12 root for {host_arch} is not built yet (scons binaries makes it)")
    r, out = run_in_overlay(root, tmp_path, PRIVILEGED_STEPS, {"/wvds/src": unpacked})
    out_text = r.stdout + r.stderr
    if (out / "service.log").exists():
        out_text += "\n--- service log ---\n" + (out / "service.log").read_text(errors="replace")[-3000:]
    assert r.returncode == 0 and "== done" in r.stdout, out_text
    assert "uid=" in out_text and "groups=" in out_text
    gid = int(out_text.split("== gid ")[1].split()[0])
    assert f'"allow_gids": [{gid}]' in out_text and '"allow_uids": [0]' in out_text
    modes = dict(line.split(" ", 1) for line in out_text.split("== modes\n")[1].split("== gid")[0].splitlines())
    assert modes["/etc/opt/wvds"] == "root:wvds 750"
    assert modes["/etc/opt/wvds/keystore.secret"] == "wvds:wvds 600"
    assert modes["/etc/opt/wvds/crypto_service.json"] == "root:wvds 640"
    assert modes["/var/opt/wvds/keystore"] == "wvds:wvds 700"
    assert modes["/var/opt/wvds/est"] == "wvds-est:wvds 700"
    assert modes["/run/wvds"] == "wvds:wvds 750"
    if delivery.has_binaries(host_arch):
        gateway = out_text.split("== gateway\n")[1].split("== stranger")[0]
        assert "oem_gateway: all steps succeeded" in gateway, out_text
        stranger = out_text.split("== stranger\n")[1].split("== uninstall")[0]
        assert "refused: 1" in stranger and "WVDS_ERR_" in stranger, out_text
    else:
        assert "no daemon binaries" in out_text


SYSTEMD_STEPS = r"""
set -eu
# systemd as install.sh sees it: /run/systemd/system and a systemctl that records what it is asked
mkdir -p /run/systemd/system /usr/local/sbin
cat > /usr/local/sbin/systemctl <<'EOS'
#!/bin/sh
echo "systemctl $*" >> /wvds/out/systemctl.log
case "$*" in *restart*wvds-crypto*) if [ -e /wvds/out/fail-restart ]; then exit 1; fi ;; esac
case "$*" in is-active*) exit 3 ;; esac
exit 0
EOS
chmod 755 /usr/local/sbin/systemctl
bash /wvds/src/install.sh
echo "== first $(readlink /opt/wvds/current)"
grep -h '^ExecStart=\|^User=\|^ReadWritePaths=\|^Environment=' /etc/systemd/system/wvds-*.service
touch /wvds/out/fail-restart
if bash /wvds/site/install.sh; then echo "upgrade unexpectedly succeeded"; exit 1; fi
echo "== after $(readlink /opt/wvds/current)"
rm /wvds/out/fail-restart
bash /wvds/site/install.sh --uninstall
test ! -e /etc/systemd/system/wvds-crypto.service
echo "== done"
"""


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (an overlay of the Debian root)")
def test_systemd_install_and_rollback_in_debian_root(delivery, unpacked, tmp_path, host_arch):
    """The systemd branch of install.sh (units, enable, restart) with a recording systemctl, and the
    rollback to the previous release when the new one's service does not start."""
    from packaging_support import copy_delivery, make_version
    root = debian_root(host_arch)
    if root is None:
        pytest.skip(f"the Debian 12 root for {host_arch} is not built yet (scons binaries makes it)")
    if not delivery.has_binaries(host_arch):
        pytest.skip("no daemons in this delivery: install.sh installs no units")
    newer = make_version(copy_delivery(unpacked, tmp_path / "newer"), "0.2.1")
    r, out = run_in_overlay(root, tmp_path, SYSTEMD_STEPS, {"/wvds/src": unpacked, "/wvds/site": newer})
    text = r.stdout + r.stderr
    assert r.returncode == 0 and "== done" in r.stdout, text
    calls = (out / "systemctl.log").read_text().splitlines()
    assert calls[:3] == ["systemctl daemon-reload", "systemctl enable --quiet wvds-crypto.service",
                         "systemctl restart wvds-crypto.service"], calls
    first = text.split("== first ")[1].split()[0]
    assert text.split("== after ")[1].split()[0] == first, "the failed upgrade was not rolled back"
    assert "does not start with release 0.2.1-" in text and "going back to" in text
    assert "ExecStart=/opt/wvds/bin/wvds_crypto_service --config /etc/opt/wvds/crypto_service.json" in text
    assert "Environment=OPENSSL_CONF=/etc/opt/wvds/ssl/openssl-wvds.cnf" in text
    assert "systemctl disable --now wvds-crypto.service" in calls
