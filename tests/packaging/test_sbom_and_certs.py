"""The bill of materials and the test PKI inside the delivery."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from support.targets import BUILD, HOST, ROOT

ARCHS = ("x86_64", "aarch64")


@pytest.fixture(scope="module")
def bom(unpacked, delivery) -> dict:
    return json.loads((unpacked / "sbom" / f"wvds-crypto-svc-{delivery.version}.cdx.json").read_text())


def test_sbom_is_cyclonedx(bom, delivery):
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] in ("1.5", "1.6") and bom["version"] == 1
    assert uuid.UUID(bom["serialNumber"].removeprefix("urn:uuid:"))
    meta = bom["metadata"]
    assert meta["component"]["name"] == "wvds-crypto-svc" and meta["component"]["version"] == delivery.version
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["timestamp"])
    refs = [c["bom-ref"] for c in bom["components"]]
    assert len(refs) == len(set(refs)), "bom-refs must be unique"
    known = set(refs) | {meta["component"]["bom-ref"]}
    for dep in bom["dependencies"]:
        assert dep["ref"] in known and set(dep["dependsOn"]) <= known, dep
    for c in bom["components"]:
        assert c["type"] in ("library", "application", "framework") and c["name"] and c["version"], c


def test_sbom_lists_openssl_from_the_recipe(bom, unpacked):
    text = (ROOT / "recipes" / "openssl" / "conandata.yml").read_text()
    version = re.search(r'^\s+"(\d+\.\d+\.\d+)":', text, re.M).group(1)
    sha = re.search(r'sha256:\s*"([0-9a-f]{64})"', text).group(1)
    by_ref = {c["bom-ref"]: c for c in bom["components"]}
    for ref in ("openssl", "openssl-fips-provider"):
        c = by_ref[ref]
        assert c["version"] == version and c["hashes"] == [{"alg": "SHA-256", "content": sha}]
        assert c["licenses"] == [{"license": {"id": "Apache-2.0"}}]
        assert c["purl"].startswith(f"pkg:generic/openssl@{version}")
    assert {f"lib/{a}/fips.so" for a in ARCHS} == {o["location"] for o in by_ref["openssl-fips-provider"]
                                                  ["evidence"]["occurrences"]}
    assert "Apache License" in (unpacked / "licenses" / "OpenSSL-LICENSE.txt").read_text()


def test_every_location_is_in_the_tarball(bom, unpacked):
    for c in bom["components"]:
        for occ in c.get("evidence", {}).get("occurrences", []):
            path = unpacked / occ["location"]
            assert path.exists() or path.is_symlink(), (c["bom-ref"], occ["location"])


def test_sbom_covers_the_native_programs_when_shipped(bom, delivery, unpacked):
    names = {c["name"] for c in bom["components"]}
    if not any(delivery.has_binaries(a) for a in ARCHS):
        assert not names & {"cpython", "nuitka", "wvds-daemons"}, "the SBOM lists programs that are not shipped"
        return
    assert {"cpython", "nuitka", "wvds-daemons"} <= names
    # every third-party distribution Nuitka put into a program (its own report), with version and license;
    # packages installed only as dependencies of others and never imported are not in
    pypi = {c["name"].lower(): c for c in bom["components"] if c.get("purl", "").startswith("pkg:pypi/")}
    for arch in ARCHS:
        report = ROOT / "build" / arch / "nuitka" / "report.xml"
        if not delivery.has_binaries(arch) or not report.exists():
            continue
        compiled_in = {m.get("distribution") for m in ET.parse(report).getroot().iter("module")
                       if m.get("distribution")}
        dists = {n.lower().replace("_", "-") for n in compiled_in}
        assert {"asn1crypto", "python-pkcs11"} <= dists  # and no second crypto library (crypto_scan.py)
        assert not dists & {"cryptography", "cffi", "tpm2-pytss", "pycparser"}, dists
        for name in compiled_in:
            assert name.lower() in pypi or name.lower().replace("_", "-") in pypi, (arch, name)
    for c in pypi.values():
        assert c.get("licenses"), c["name"]
    # every bundled shared library beside the program belongs to a listed component
    located = {o["location"] for c in bom["components"] for o in c.get("evidence", {}).get("occurrences", [])}
    for arch in ARCHS:
        if not delivery.has_binaries(arch):
            continue
        for p in (unpacked / "bin" / arch).iterdir():
            if ".so" in p.name and not p.is_symlink():
                assert f"bin/{arch}/{p.name}" in located, p.name
    assert (unpacked / "licenses" / "debian").is_dir() and (unpacked / "licenses" / "python").is_dir()


# --- the test PKI ---------------------------------------------------------------------------------------

CHAINS = {"": "ML-DSA-65", "ecdsa/": "EC-P-256"}


@pytest.mark.parametrize("prefix", CHAINS)
def test_pki_is_marked_test_only_and_consistent(unpacked, prefix):
    d = unpacked / "certs"
    certs = {n: x509.load_pem_x509_certificate((d / f"{prefix}{n}.pem").read_bytes())
             for n in ("root_ca", "service_cert", "client_cert")}
    keys = {n: serialization.load_pem_private_key((d / f"{prefix}{k}").read_bytes(), None)
            for n, k in (("root_ca", "root_ca_key.pem"), ("service_cert", "service_key.pem"),
                         ("client_cert", "client_key.pem"))}
    for n, c in certs.items():
        assert "O=WvdS TEST ONLY" in c.subject.rfc4514_string(), n
        assert (d / f"{prefix}{n}.der").read_bytes() == c.public_bytes(serialization.Encoding.DER)
        assert c.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            == keys[n].public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo), n
        assert c.issuer == certs["root_ca"].subject
    assert certs["root_ca"].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = certs["service_cert"].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    # validity starts on the day of the commit the delivery was built from
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True).stdout or 0)
    day = dt.datetime.fromtimestamp(epoch, dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    assert certs["root_ca"].not_valid_before_utc == day
    assert "TEST ONLY" in (d / "README.md").read_text()


@pytest.mark.parametrize("prefix", CHAINS)
def test_pki_verifies_with_the_fips_provider(unpacked, prefix, fips_envs):
    env = fips_envs.env(HOST)
    d = unpacked / "certs"
    for leaf in ("service_cert.pem", "client_cert.pem"):
        r = subprocess.run([str(BUILD / HOST.arch / "openssl" / "bin" / "openssl"), "verify", "-x509_strict",
                            "-CAfile", str(d / f"{prefix}root_ca.pem"), str(d / f"{prefix}{leaf}")],
                           env=env, capture_output=True, text=True)
        assert r.returncode == 0 and ": OK" in r.stdout, r.stdout + r.stderr


def test_pki_keys_follow_the_version(unpacked):
    """Keys come from seeds over the version (the same version always gives the same files: see the
    reproducibility test); another version gives other keys."""
    import certs
    text = (unpacked / "certs" / "root_ca.pem").read_bytes()
    not_before = x509.load_pem_x509_certificate(text).not_valid_before_utc.timestamp()
    other = certs.generate(BUILD / HOST.arch / "openssl", "9.9.9", int(not_before))
    assert other["root_ca.pem"] != text
    assert set(other) == {p.relative_to(unpacked / "certs").as_posix()
                          for p in (unpacked / "certs").rglob("*") if p.is_file()}
