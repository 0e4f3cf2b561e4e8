"""Test-side helpers for est_service: the EST server process, an est_service configuration, checks.

Used by the fixtures in conftest.py and by the tests (`from support.est import ...`).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support.fips import WVDS_OPENSSL_CNF
from support.processes import terminate
from support.service import ServiceProcess, clib_path
from support.targets import HOST, ROOT

EST_SERVER = ROOT / "tests" / "support" / "est_server.py"

def wvds_provider() -> Path:
    return ROOT / "build" / HOST.arch / "provider" / "wvds.so"


def write_wvds_openssl_cnf(path: Path, fips_env: dict) -> Path:
    """The FIPS configuration of fips_env (its fipsmodule.cnf) with the host's wvds.so added."""
    fipsmodule = Path(fips_env["OPENSSL_CONF"]).parent / "fipsmodule.cnf"
    path.write_text(WVDS_OPENSSL_CNF.format(fipsmodule=fipsmodule, module=wvds_provider()))
    return path


class EstServer:
    """The test EST server process: start, steer (control.json), read its request log, stop."""

    def __init__(self, workdir: Path, *args: str):
        self.dir, self.args = workdir, args
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    def start(self, timeout: float = 30) -> "EstServer":
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "ready.json").unlink(missing_ok=True)
        env = HOST.env(LD_LIBRARY_PATH=str(HOST.openssl_root / "lib"), PYTHONPATH=str(ROOT / "src"))
        self.log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, str(EST_SERVER), "--dir", str(self.dir), *self.args],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (self.dir / "ready.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"EST server did not start:\n{(self.dir / 'server.log').read_text()}")
            time.sleep(0.05)
        self.info = json.loads((self.dir / "ready.json").read_text())
        self.control()
        return self

    @property
    def port(self) -> int:
        return self.info["port"]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def root_pem(self) -> str:
        return self.info["root"]

    def control(self, **settings) -> None:
        """Replace the misbehaviour settings (see DEFAULTS in est_server.py) and clear the request log.

        Each call starts a new generation: requests() lists only the requests that arrived after it. A
        request that arrived before (a handler still sleeping in an earlier test's delay_s, say) may
        be logged later, but under its own generation."""
        self.generation = getattr(self, "generation", 0) + 1
        tmp = self.dir / "control.json.tmp"
        tmp.write_text(json.dumps({**settings, "generation": self.generation}))
        os.replace(tmp, self.dir / "control.json")
        (self.dir / "requests.jsonl").unlink(missing_ok=True)

    def requests(self, op: str | None = None) -> list[dict]:
        path = self.dir / "requests.jsonl"
        if not path.exists():
            return []
        out = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r for r in out if (op is None or r.get("op") == op)
                and r.get("generation", 0) == getattr(self, "generation", 0)]

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
        if hasattr(self, "log"):
            self.log.close()


class EstClient:
    """One est_service configuration (its own state dir) and ways to run it."""

    def __init__(self, workdir: Path, fips_env: dict, crypto: ServiceProcess, est: EstServer,
                 algorithm: str = "ML-DSA-65", **overrides):
        self.dir, self.crypto, self.server = workdir, crypto, est
        server = est
        workdir.mkdir(parents=True, exist_ok=True)
        self.password_file = workdir / "est.pw"
        self.password_file.write_text("est-pass\n")
        self.password_file.chmod(0o600)
        self.env = dict(fips_env, PYTHONPATH=str(ROOT / "src"), WVDS_CLIENT_LIB=str(clib_path(HOST)),
                        LD_LIBRARY_PATH=str(HOST.openssl_root / "lib"))
        server_cfg = {"url": server.url, "trust_anchor": server.root_pem, "timeout_s": 10,
                      "auth": {"bootstrap": {"username": "est", "password_file": str(self.password_file)}}}
        # own key label per client: est_service deletes unused keys carrying its label (docs/est.md)
        cert_cfg = {"name": "device", "server": "test", "key_algorithm": algorithm,
                    "key_label": f"est:{workdir.parent.name[-20:]}/{workdir.name}",
                    "subject": [["CN", "gw-0001"], ["O", "WvdS"]], "san": {"dns": ["gw-0001.local"],
                                                                          "ip": ["192.0.2.7"]},
                    "retry": {"initial_s": 0.2, "max_s": 1.0},
                    "poll": {"default_s": 0.5, "min_s": 0.1, "max_s": 5, "max_total_s": 60, "max_polls": 10}}
        for key, value in overrides.pop("server", {}).items():
            server_cfg[key] = value
        for key, value in overrides.pop("certificate", {}).items():
            cert_cfg[key] = value
        self.config = {"crypto_service": {"socket": crypto.socket}, "state_dir": str(workdir / "state"),
                       "servers": {"test": server_cfg}, "certificates": [cert_cfg], "log": {"level": "debug"},
                       **overrides}
        self.write_config()
        self.proc: subprocess.Popen | None = None

    @property
    def cert_dir(self) -> Path:
        return self.dir / "state" / "certs" / self.config["certificates"][0]["name"]

    def use_current_certificate(self, openssl_cnf: Path) -> None:
        """Re-enroll with TLS client authentication by the current certificate (its key stays in
        crypto_service) and no Basic credentials; OpenSSL configured with the wvds provider, both in the
        config file and as OPENSSL_CONF (as the systemd unit does)."""
        self.config["servers"]["test"]["auth"]["reenroll"] = {"client_cert": "current"}
        self.config["openssl"] = {"config": str(openssl_cnf), "modules": self.env["OPENSSL_MODULES"]}
        self.env["OPENSSL_CONF"] = str(openssl_cnf)
        self.write_config()

    def write_config(self) -> None:
        (self.dir / "est.json").write_text(json.dumps(self.config, indent=2))

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "wvds.est_service", "--config", str(self.dir / "est.json"), *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        r = subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, timeout=timeout)
        with open(self.dir / "est.log", "a") as f:
            f.write(f"$ {' '.join(args)} -> {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def once(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        r = self.run("once", *args)
        if expect is not None:
            assert r.returncode == expect, f"once {args} exited {r.returncode}:\n{r.stdout}\n{r.stderr[-6000:]}"
        return r

    def start_daemon(self) -> subprocess.Popen:
        self.daemon_log = open(self.dir / "daemon.log", "ab")
        self.proc = subprocess.Popen(self.command("run"), env=self.env, stdout=self.daemon_log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while b"est_service ready" not in (self.dir / "daemon.log").read_bytes():
            assert self.proc.poll() is None, (self.dir / "daemon.log").read_text()
            assert time.monotonic() < deadline, "daemon not ready"
            time.sleep(0.05)
        return self.proc

    def stop_daemon(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        rc = self.proc.returncode
        self.proc = None
        self.daemon_log.close()
        return rc

    def status(self) -> dict:
        r = self.run("status", "--json")
        assert r.returncode in (0, 1), r.stderr
        return json.loads(r.stdout)["certificates"][0]

    def state(self) -> dict:
        """state.json as it is now ({} before the first write)."""
        try:
            return json.loads((self.cert_dir / "state.json").read_text())
        except FileNotFoundError:
            return {}

    def generation(self) -> int | None:
        try:
            return int(os.readlink(self.cert_dir / "current").split("-")[1])
        except FileNotFoundError:
            return None

    def pair(self) -> tuple[x509.Certificate, list[x509.Certificate], dict]:
        cur = self.cert_dir / "current"
        chain = x509.load_pem_x509_certificates((cur / "chain.pem").read_bytes())
        cert = x509.load_pem_x509_certificate((cur / "cert.pem").read_bytes())
        assert chain[0] == cert
        return cert, chain[1:], json.loads((cur / "key.json").read_text())


def raw_public_key(cert: x509.Certificate) -> bytes:
    pub = cert.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def assert_valid_pair(client: EstClient, roots: list[x509.Certificate] | None = None) -> x509.Certificate:
    """The current pair is usable: the certificate is valid now, issued by a test root, and its public key
    is the one crypto_service holds under key.json's key id."""
    from wvds.client import Client
    cert, _chain, meta = client.pair()
    now = time.time()
    assert cert.not_valid_before_utc.timestamp() <= now + 2 and now < cert.not_valid_after_utc.timestamp(), \
        "certificate not valid now"
    roots = roots or [x509.load_pem_x509_certificate(Path(client.server.root_pem).read_bytes())]
    assert any(_issued_by(cert, r) for r in roots), "certificate not issued by the test CA"
    with Client(client.crypto.socket) as c:
        pub = c.export_public(meta["key_id"])
    assert pub.public_key == raw_public_key(cert), "certificate and crypto_service key differ"
    return cert


def _issued_by(cert: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(root)
        return True
    except Exception:  # InvalidSignature, ValueError, TypeError: not this issuer
        return False
