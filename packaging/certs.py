"""The test PKI shipped in the delivery's certs/: reproducible, and marked TEST ONLY everywhere.

Two chains, each a root CA with a TLS server and a TLS client certificate:

    certs/root_ca.{pem,der}  service_cert.{pem,der}  client_cert.{pem,der}     ML-DSA-65
    certs/ecdsa/...                                                             ECDSA P-256 (classical peers)

plus their private keys (`*_key.pem`, PKCS#8) and a README. Every subject carries
`O=WvdS TEST ONLY`.

Why the certificates are generated at build time and still byte-identical in two
builds of the same commit (the tarball must be reproducible):

* keys come from seeds: SHA-256 over a fixed label, the product version and the
  certificate's name. ML-DSA key generation from a seed is deterministic (FIPS 204
  ML-DSA.KeyGen_internal; `openssl genpkey -pkeyopt hexseed:`); the ECDSA private
  scalar is derived the same way and loaded as a key;
* signatures are deterministic: ML-DSA's deterministic variant (FIPS 204, `rnd` =
  32 zero bytes; `-sigopt deterministic:1`) and deterministic ECDSA (RFC 6979,
  `-sigopt nonce-type:1`), both inside the FIPS provider;
* serial numbers are hashes of the same label, validity starts at the commit's day
  (SOURCE_DATE_EPOCH), and the extensions come from a fixed configuration.

Consequence, stated in certs/README.md: anyone can recompute these private keys
from this file. They are for tests and bring-up only, never for production trust.
The alternative (generate once, commit the files) was rejected: committed
certificates do not follow the product version and silently expire.

All of it runs through the product's own `openssl` (build/<arch>/openssl) with the
FIPS provider activated by a throw-away `fipsinstall` in a temporary directory.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LABEL = "WvdS TEST ONLY PKI v1"
ORG = "WvdS TEST ONLY"
ROOT_DAYS = 3650
LEAF_DAYS = 1825
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_OID_DER = bytes.fromhex("06082a8648ce3d030107")  # prime256v1

EXTENSIONS = """\
[req]
distinguished_name = dn
[dn]
[root_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[service_cert]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[client_cert]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

OPENSSL_CNF = """\
config_diagnostics = 1
openssl_conf = openssl_init
.include {fipsmodule}
[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
[provider_sect]
fips = fips_sect
base = base_sect
[base_sect]
activate = 1
[fips_sect]
module = {module}
[algorithm_sect]
default_properties = fips=yes
"""


@dataclass(frozen=True)
class Chain:
    directory: str  # below certs/ ("" = certs/ itself)
    algorithm: str  # "ML-DSA-65" or "EC-P-256"
    title: str

    @property
    def sigopt(self) -> list[str]:
        if self.algorithm.startswith("ML-DSA"):
            return ["-sigopt", "deterministic:1"]
        return ["-sigopt", "nonce-type:1", "-sha256"]


CHAINS = (Chain("", "ML-DSA-65", "ML-DSA-65"), Chain("ecdsa", "EC-P-256", "ECDSA P-256"))
SUBJECTS = {
    "root_ca": "WvdS TEST ONLY {title} Root CA",
    "service_cert": "localhost",
    "client_cert": "wvds-test-client",
}
KEY_FILES = {"root_ca": "root_ca_key.pem", "service_cert": "service_key.pem", "client_cert": "client_key.pem"}


def seed(version: str, chain: Chain, name: str, purpose: str = "key") -> bytes:
    return hashlib.sha256(f"{LABEL}|{version}|{chain.algorithm}|{name}|{purpose}".encode()).digest()


def serial(version: str, chain: Chain, name: str) -> str:
    raw = bytearray(seed(version, chain, name, "serial")[:16])
    raw[0] = (raw[0] & 0x7F) | 0x40  # positive, 16 significant bytes
    return "0x" + raw.hex()


def validity(epoch: int, days: int) -> tuple[str, str]:
    start = dt.datetime.fromtimestamp(epoch, dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + dt.timedelta(days=days)
    return start.strftime("%Y%m%d%H%M%SZ"), end.strftime("%Y%m%d%H%M%SZ")


def sec1_p256(scalar: int) -> bytes:
    """ECPrivateKey (RFC 5915) without the optional public key: OpenSSL computes it when loading."""
    body = b"\x02\x01\x01" + b"\x04\x20" + scalar.to_bytes(32, "big") + b"\xa0" + bytes([len(P256_OID_DER)]) \
        + P256_OID_DER
    return b"\x30" + bytes([len(body)]) + body


class OpenSSL:
    """The product's openssl CLI with the FIPS provider only, set up in a temporary directory."""

    def __init__(self, openssl_root: Path, workdir: Path):
        openssl_root = openssl_root.resolve()
        self.binary = openssl_root / "bin" / "openssl"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSSL_")}
        self.env.update(LC_ALL="C", TZ="UTC")
        if not _runs_natively(self.binary):
            self.env["QEMU_LD_PREFIX"] = "/usr/aarch64-linux-gnu"
        module = openssl_root / "lib" / "ossl-modules" / "fips.so"
        fipsmodule = workdir / "fipsmodule.cnf"
        self.run("fipsinstall", "-module", str(module), "-out", str(fipsmodule))
        cnf = workdir / "openssl.cnf"
        cnf.write_text(OPENSSL_CNF.format(fipsmodule=fipsmodule, module=module))
        self.env["OPENSSL_CONF"] = str(cnf)

    def run(self, *args: str) -> bytes:
        r = subprocess.run([str(self.binary), *args], env=self.env, capture_output=True)
        if r.returncode:
            raise RuntimeError(f"openssl {' '.join(args[:2])} failed:\n{r.stderr.decode(errors='replace')}")
        return r.stdout


def _runs_natively(binary: Path) -> bool:
    machine = int.from_bytes(binary.read_bytes()[18:20], "little")
    return {62: "x86_64", 183: "aarch64"}.get(machine) == platform.machine()


def generate(openssl_root: Path, version: str, epoch: int) -> dict[str, bytes]:
    """Every file of certs/ (path below certs/ -> content)."""
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="wvds-certs-") as tmp:
        work = Path(tmp)
        ossl = OpenSSL(openssl_root, work)
        ext = work / "extensions.cnf"
        ext.write_text(EXTENSIONS)
        for chain in CHAINS:
            d = work / (chain.directory or "mldsa")
            d.mkdir()
            for name in ("root_ca", "service_cert", "client_cert"):
                key = d / KEY_FILES[name]
                _make_key(ossl, chain, version, name, key, d)
                subject = f"/O={ORG}/OU=Test PKI - not for production/CN=" + SUBJECTS[name].format(title=chain.title)
                days = ROOT_DAYS if name == "root_ca" else LEAF_DAYS
                not_before, not_after = validity(epoch, days)
                signer = [] if name == "root_ca" else ["-CA", str(d / "root_ca.pem"),
                                                       "-CAkey", str(d / KEY_FILES["root_ca"])]
                ossl.run("req", "-new", "-x509", "-key", str(key), "-subj", subject, *signer,
                         "-config", str(ext), "-extensions", name, "-set_serial", serial(version, chain, name),
                         "-not_before", not_before, "-not_after", not_after, *chain.sigopt,
                         "-out", str(d / f"{name}.pem"))
                ossl.run("x509", "-in", str(d / f"{name}.pem"), "-outform", "DER", "-out", str(d / f"{name}.der"))
            for name in ("service_cert", "client_cert"):
                ossl.run("verify", "-x509_strict", "-CAfile", str(d / "root_ca.pem"), str(d / f"{name}.pem"))
            prefix = f"{chain.directory}/" if chain.directory else ""
            for f in sorted(d.iterdir()):
                out[prefix + f.name] = f.read_bytes()
    out["README.md"] = readme(version, epoch).encode()
    return out


def _make_key(ossl: OpenSSL, chain: Chain, version: str, name: str, key: Path, work: Path) -> None:
    s = seed(version, chain, name)
    if chain.algorithm.startswith("ML-DSA"):
        # seed-only PKCS#8 (RFC 9881): compact, and what other ML-DSA implementations read
        ossl.run("genpkey", "-algorithm", chain.algorithm, "-pkeyopt", f"hexseed:{s.hex()}",
                 "-provparam", "ml-dsa.output_formats=seed-only", "-out", str(key))
        return
    scalar = int.from_bytes(s, "big") % (P256_ORDER - 1) + 1
    sec1 = work / f".{name}.sec1.der"
    sec1.write_bytes(sec1_p256(scalar))
    ossl.run("pkey", "-inform", "DER", "-in", str(sec1), "-out", str(key))
    sec1.unlink()


def readme(version: str, epoch: int) -> str:
    nb_root, na_root = validity(epoch, ROOT_DAYS)
    nb_leaf, na_leaf = validity(epoch, LEAF_DAYS)
    return f"""\
# certs/ — TEST ONLY certificates (WvdS Crypto Service {version})

**Do not use these certificates or keys for anything but tests and bring-up.**
Their private keys are in this directory *and* can be recomputed by anyone: they
are derived from a public label and the product version so that every build of
this release produces byte-identical files. Every subject says `O=WvdS TEST ONLY`.
Never put `root_ca.pem` into a production trust store.

| file | what |
|---|---|
| `root_ca.pem` / `.der` | self-signed ML-DSA-65 root CA (CA:TRUE, keyCertSign, cRLSign) |
| `service_cert.pem` / `.der` | ML-DSA-65 TLS server certificate, CN=localhost, SAN localhost, 127.0.0.1, ::1 (serverAuth) |
| `client_cert.pem` / `.der` | ML-DSA-65 TLS client certificate, CN=wvds-test-client (clientAuth) |
| `root_ca_key.pem`, `service_key.pem`, `client_key.pem` | their private keys (PKCS#8 PEM, unencrypted; ML-DSA as the 32-byte seed, RFC 9881) |
| `ecdsa/…` | the same set with ECDSA P-256 keys and ecdsa-with-SHA256 signatures, for classical peers |

Validity: root CA {nb_root} – {na_root}, the others {nb_leaf} – {na_leaf} (UTC).
Signatures are deterministic (ML-DSA deterministic variant, RFC 6979 ECDSA).

Inspect and check them with the delivery's tool:

```sh
python3 scripts/extract_certs.py show certs/service_cert.pem
python3 scripts/extract_certs.py verify --ca certs/root_ca.pem certs/service_cert.pem
```

For real devices, certificates come from your PKI through est_service (EST, RFC 7030);
see WvdS_KB_OEM.md, "EST setup".
"""


def write(files: dict[str, bytes], dest: Path) -> None:
    """Write generate()'s result below dest (for inspection; the delivery packs it from memory)."""
    shutil.rmtree(dest, ignore_errors=True)
    for rel, data in files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

