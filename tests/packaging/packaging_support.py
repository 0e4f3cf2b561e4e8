"""Helpers for the delivery tests: build, unpack, install, start the installed service, build the gateway."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from support.targets import BUILD, ROOT, TOOLCHAINS

sys.path.insert(0, str(ROOT / "packaging"))
import delivery as delivery_mod  # noqa: E402



@dataclass(frozen=True)
class Delivery:
    tarball: Path
    version: str
    top: str  # the top-level directory in the tarball
    binaries: dict  # arch -> bool

    def has_binaries(self, arch: str) -> bool:
        return self.binaries.get(arch, False)


def build_delivery(out: Path, env: dict | None = None) -> Delivery:
    """Build the tarball into out (in this process, or in a subprocess with env and another umask)."""
    if env is None:
        path = delivery_mod.make(out, BUILD, ["x86_64", "aarch64"], log=lambda *_: None)
    else:
        script = ("import sys; sys.path.insert(0, %r); import delivery; from pathlib import Path; "
                  "print(delivery.make(Path(%r), Path(%r), ['x86_64', 'aarch64'], log=lambda *_: None))"
                  % (str(ROOT / "packaging"), str(out), str(BUILD)))
        r = subprocess.run([sys.executable, "-c", script], env=env, cwd=env.get("PWD", "/"), capture_output=True,
                           text=True, preexec_fn=lambda: os.umask(int(env.get("WVDS_TEST_UMASK", "022"), 8)))
        assert r.returncode == 0, r.stdout + r.stderr
        path = Path(r.stdout.strip().splitlines()[-1])
    version = delivery_mod.product_version(ROOT)
    binaries = {a: delivery_mod.binaries_dir(a, BUILD) is not None for a in ("x86_64", "aarch64")}
    return Delivery(path, version, delivery_mod.delivery_name(version), binaries)


def unpack(tarball: Path, dest: Path) -> Path:
    subprocess.run(["tar", "-C", str(dest), "-xzf", str(tarball)], check=True)
    tops = list(dest.iterdir())
    assert len(tops) == 1, tops
    return tops[0]


def copy_delivery(src: Path, dest: Path) -> Path:
    """A private, modifiable copy of an unpacked delivery (symlinks kept)."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


def rewrite_sums(top: Path) -> None:
    """Recompute SHA256SUMS after a test changed files (a consistent, but different, delivery)."""
    lines = []
    for line in (top / "SHA256SUMS").read_text().splitlines():
        name = line.split("  ", 1)[1]
        data = (top / name).read_bytes()
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    (top / "SHA256SUMS").write_text("".join(lines))


def make_version(top: Path, version: str) -> Path:
    """Turn a delivery copy into 'another release': its VERSION and checksums change."""
    (top / "VERSION").write_text(version + "\n")
    rewrite_sums(top)
    return top


def uname_shim(directory: Path, machine: str) -> dict:
    """An environment whose `uname -m` says machine (install.sh decides the architecture by it)."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "uname"
    shim.write_text(f"#!/bin/sh\nif [ \"$1\" = -m ]; then echo {machine}; else exec /bin/uname \"$@\"; fi\n")
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{directory}:{os.environ['PATH']}")
    sysroot = TOOLCHAINS[machine].sysroot if machine in TOOLCHAINS else None  # machine may be one we do not build
    if sysroot:
        env["QEMU_LD_PREFIX"] = sysroot  # the arm64 programs run under qemu-user here
    return env


def install(top: Path, *args: str, env: dict | None = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(["bash", str(top / "install.sh"), *args], capture_output=True, text=True,
                       env=env or dict(os.environ), timeout=timeout)
    if check:
        assert r.returncode == 0, f"install.sh {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


@dataclass
class Installed:
    prefix: Path
    arch: str

    @property
    def opt(self) -> Path:
        return self.prefix / "opt" / "wvds"

    @property
    def etc(self) -> Path:
        return self.prefix / "etc" / "opt" / "wvds"

    @property
    def var(self) -> Path:
        return self.prefix / "var" / "opt" / "wvds"

    @property
    def current(self) -> Path:
        return self.opt / "current"

    @property
    def lib(self) -> Path:
        return self.current / "lib" / self.arch

    @property
    def socket(self) -> Path:
        return Path(json.loads((self.etc / "crypto_service.json").read_text())["socket"]["path"])

    def release(self) -> str:
        return os.readlink(self.current)

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSSL_", "LD_LIBRARY_PATH", "WVDS_"))}
        env["OPENSSL_CONF"] = str(self.etc / "ssl" / "openssl.cnf")
        if TOOLCHAINS[self.arch].sysroot:
            env["QEMU_LD_PREFIX"] = TOOLCHAINS[self.arch].sysroot
        env.update(extra)
        return env


class InstalledService:
    """crypto_service of an installation: the native program if the delivery has it, else from source.

    From source it runs on this machine's Python with the *installed* OpenSSL, FIPS config,
    client library and configuration, which is what the installation provides.
    """

    def __init__(self, inst: Installed, workdir: Path, config: Path | None = None):
        self.inst, self.workdir = inst, workdir
        self.config = config or inst.etc / "crypto_service.json"
        self.log_path = workdir / f"service-{inst.arch}.log"
        self.proc = None

    @property
    def native(self) -> bool:
        return (self.inst.opt / "bin" / "wvds_crypto_service").exists()

    def command(self) -> tuple[list[str], dict]:
        if self.native:
            return [str(self.inst.opt / "bin" / "wvds_crypto_service"), "--config", str(self.config)], self.inst.env()
        lib = self.inst.lib
        env = self.inst.env(PYTHONPATH=str(ROOT / "src"), LD_LIBRARY_PATH=str(lib),
                            WVDS_CLIENT_LIB=str(lib / "libl4re_crypto_service.so"))
        return [sys.executable, "-m", "wvds.crypto_service", "--config", str(self.config)], env

    def start(self, timeout: float = 120) -> "InstalledService":
        cmd, env = self.command()
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}:\n{self.log()}")
            if "crypto_service ready" in self.log()[self._offset:]:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"service not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        rc, self.proc = self.proc.returncode, None
        return rc

    def __enter__(self):
        return self.start()

    def check(self, r: subprocess.CompletedProcess, what: str) -> None:
        """Assert that a client run succeeded; on failure show its output and the service's log."""
        assert r.returncode == 0, f"{what} failed ({r.returncode}):\n{r.stdout}{r.stderr}\n--- service log ---\n" \
                                  f"{self.log()[self._offset:][-3000:]}"

    def __exit__(self, *exc):
        self.stop()


def build_gateway(inst: Installed, workdir: Path, rpath: Path | None = None) -> Path:
    """The OEM example built the way README_OEM.md says: copied out of the installation, make.

    rpath: where the program will find the library at run time (default: the installation as seen here).
    """
    src = workdir / f"gateway-{inst.arch}"
    shutil.copytree(inst.current / "examples", src)
    r = subprocess.run(["make", "-C", str(src), f"DELIVERY={inst.current}", f"RPATH={rpath or inst.lib}",
                        f"ARCH={inst.arch}", f"CC={TOOLCHAINS[inst.arch].compiler}",
                        "CFLAGS=-O2 -Wall -Wextra -Werror -fPIE"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return src / "oem_gateway"


def run_gateway(inst: Installed, program: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(program), str(inst.socket)], env=inst.env(), capture_output=True, text=True,
                          timeout=timeout)


def wvdsctl(inst: Installed, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """wvdsctl against the installation: the installed native program, else from source on its library."""
    if (inst.opt / "bin" / "wvdsctl").exists():
        cmd, env = [str(inst.opt / "bin" / "wvdsctl")], inst.env()
    else:
        cmd = [sys.executable, "-m", "wvds.cli"]
        env = inst.env(PYTHONPATH=str(ROOT / "src"), WVDS_CLIENT_LIB=str(inst.lib / "libl4re_crypto_service.so"))
    return subprocess.run([*cmd, "--socket", str(inst.socket), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd="/")


def tar_members(tarball: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(tarball, "r:gz") as tar:
        return tar.getmembers()

