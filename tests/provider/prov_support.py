"""Helpers for the wvds provider tests: the key reference format in Python, OpenSSL configurations
as docs/provider.md gives them, a test PKI (pyca/cryptography), and the TLS peers."""
from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa
from cryptography.x509.oid import NameOID

from support.processes import terminate
from support.targets import BUILD, HOST, Target

HERE = Path(__file__).resolve().parent
ALGORITHMS = ("ML-DSA-44", "ML-DSA-65", "ML-DSA-87", "ECDSA-P256", "ECDSA-P384")
LABEL = "WVDS KEY REFERENCE"


def provider_dir(arch: str) -> Path:
    return BUILD / arch / "provider"


# --- the key reference format (keyref.h), independently of the C code ----------------------------

def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xFF])
    return bytes([tag]) + length + content


def keyref_der(key_id: int, algorithm: str, socket_path: str | None, fmt: str = "WVDS-KEYREF-1",
               integer: bytes | None = None, extra: bytes = b"") -> bytes:
    """The DER of a reference; integer and extra let tests build malformed ones."""
    if integer is None:
        integer = key_id.to_bytes(5, "big").lstrip(b"\0") or b"\0"
        if integer[0] & 0x80:
            integer = b"\0" + integer
    body = _tlv(0x0C, fmt.encode()) + _tlv(0x02, integer) + _tlv(0x0C, algorithm.encode())
    if socket_path is not None:
        body += _tlv(0x0C, socket_path.encode())
    return _tlv(0x30, body + extra)


def keyref_pem(der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {LABEL}-----\n{lines}\n-----END {LABEL}-----\n"


def keyref_from_pem(text: str) -> bytes:
    begin, end = f"-----BEGIN {LABEL}-----", f"-----END {LABEL}-----"
    body = text.split(begin, 1)[1].split(end, 1)[0]
    return base64.b64decode("".join(body.split()))


# --- OpenSSL configuration, as docs/provider.md gives it ----------------------------------------

from support.fips import WVDS_OPENSSL_CNF as FIPS_CNF  # noqa: E402  (the configuration docs/provider.md gives)

DEFAULT_CNF = """\
config_diagnostics = 1
openssl_conf = openssl_init

[openssl_init]
providers = provider_sect
alg_section = algorithm_sect

[provider_sect]
default = default_sect
wvds = wvds_sect

[default_sect]
activate = 1

[wvds_sect]
module = {module}
activate = 1

[algorithm_sect]
default_properties = ?provider!=wvds
"""


def write_cnf(path: Path, arch: str, fips_dir: Path | None) -> Path:
    """openssl.cnf loading wvds.so of arch: FIPS + base + wvds (fips_dir holds fipsmodule.cnf made
    by fipsinstall for arch), or default + wvds when fips_dir is None."""
    module = provider_dir(arch) / "wvds.so"
    text = (FIPS_CNF.format(fipsmodule=fips_dir / "fipsmodule.cnf", module=module) if fips_dir
            else DEFAULT_CNF.format(module=module))
    path.write_text(text)
    return path


def openssl_env(target: Target, cnf: Path, **extra: str) -> dict[str, str]:
    return target.env(OPENSSL_CONF=str(cnf), OPENSSL_MODULES=str(target.openssl_root / "lib" / "ossl-modules"),
                      **extra)


def python_env(cnf: Path) -> dict[str, str]:
    """Host Python whose ssl module runs on our OpenSSL 3.6 (as est_service does)."""
    return openssl_env(HOST, cnf, LD_LIBRARY_PATH=str(HOST.openssl_root / "lib"))


# --- test PKI ----------------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def public_key_from_raw(algorithm: str, raw: bytes):
    if algorithm.startswith("ML-DSA"):
        cls = {"ML-DSA-44": mldsa.MLDSA44PublicKey, "ML-DSA-65": mldsa.MLDSA65PublicKey,
               "ML-DSA-87": mldsa.MLDSA87PublicKey}[algorithm]
        return cls.from_public_bytes(raw)
    curve = ec.SECP256R1() if algorithm == "ECDSA-P256" else ec.SECP384R1()
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, raw)


class Pki:
    """A test CA (EC P-256) that issues the server's and the devices' certificates."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        self.ca = (x509.CertificateBuilder().subject_name(_name("WvdS provider test CA")).issuer_name(
            _name("WvdS provider test CA")).public_key(self.key.public_key()).serial_number(
            x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(
            now + dt.timedelta(days=1)).add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                                      critical=True).add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True).sign(
            self.key, hashes.SHA256()))
        self.ca_pem = self._write("ca.pem", self.ca.public_bytes(serialization.Encoding.PEM))
        server_key = ec.generate_private_key(ec.SECP256R1())
        self.server_key = self._write("server.key", server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.server_cert = self.issue(server_key.public_key(), "localhost", server=True)

    def _write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        return path

    def issue(self, public_key, cn: str, server: bool = False) -> Path:
        now = dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.ca.subject).public_key(
            public_key).serial_number(x509.random_serial_number()).not_valid_before(
            now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1)).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server
                                   else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return self._write(f"{cn}.pem", cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class DeviceKey:
    algorithm: str
    key_id: int
    public_key: bytes  # raw, as crypto_service exports it
    ref: Path  # the WVDS KEY REFERENCE file
    cert: Path  # issued by the test CA for the public key
    cn: str


# --- processes ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REQUEST = b"GET / HTTP/1.0\r\n\r\n"  # what clients send: s_server -www answers it, tls_peer reads it


class Server:
    """A TLS server process requiring client certificates: OpenSSL s_server or tls_peer.py. Both
    serve one connection at a time."""

    def __init__(self, kind: str, pki: Pki, env: dict[str, str], workdir: Path):
        self.kind, self.log = kind, workdir / f"{kind}.log"
        self._out = open(self.log, "wb")
        if kind == "s_server":
            self.port = free_port()
            cmd = [str(HOST.openssl_root / "bin" / "openssl"), "s_server", "-accept", f"127.0.0.1:{self.port}",
                   "-cert", str(pki.server_cert), "-key", str(pki.server_key), "-CAfile", str(pki.ca_pem),
                   "-Verify", "2", "-verify_return_error", "-tls1_3", "-www"]
        else:
            portfile = workdir / "py_server.port"
            cmd = [sys.executable, str(HERE / "tls_peer.py"), "server", str(pki.server_cert), str(pki.server_key),
                   str(pki.ca_pem), str(portfile)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} exited:\n{self.log.read_text(errors='replace')}")
            if kind == "s_server" and b"ACCEPT" in self.log.read_bytes():
                return
            if kind == "py_server" and portfile.exists():
                self.port = int(portfile.read_text())
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{kind} did not start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        terminate(self.proc)
        self._out.close()


def s_client_command(target: Target, server: Server, pki: Pki, cert: Path, key: Path) -> list[str]:
    return target.command(target.openssl_root / "bin" / "openssl", "s_client", "-connect",
                          f"127.0.0.1:{server.port}", "-servername", "localhost", "-verify_hostname", "localhost",
                          "-CAfile", str(pki.ca_pem), "-verify_return_error", "-cert", str(cert), "-key", str(key),
                          "-tls1_3", "-ign_eof", "-quiet")


def parse_peer_line(out: str) -> dict:
    """tls_peer.py server's JSON line in a client's output."""
    for line in out.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no answer from the Python server in:\n{out}")


def peer_client(server, pki, device, *extra: str) -> list[str]:
    """tls_peer.py client with the device's certificate and reference file."""
    return [sys.executable, str(HERE / "tls_peer.py"), "client", "localhost", str(server.port), str(pki.ca_pem),
            str(device.cert), str(device.ref), *extra]


def openssl(cnf, *args: str) -> subprocess.CompletedProcess:
    """The host openssl with that configuration."""
    return HOST.run(HOST.openssl_root / "bin" / "openssl", *args, env=openssl_env(HOST, cnf), check=False)


def assert_clean_failure(r: subprocess.CompletedProcess, *expected: str) -> None:
    """Exit status 1 (an error, reported; not a signal) with each expected text in the output."""
    out = (r.stdout + r.stderr).decode(errors="replace") if isinstance(r.stdout, bytes) else r.stdout + r.stderr
    assert r.returncode == 1, f"exit status {r.returncode} (negative = killed by a signal):\n{out}"
    for text in expected:
        assert text in out, f"{text!r} missing in:\n{out}"
