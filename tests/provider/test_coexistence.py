"""With wvds loaded as docs/provider.md says, everything that is not one of its keys still runs where
it ran before (FIPS or default provider): the provider only ever handles keys it decoded.

This is what the `?provider!=wvds` default property is for: wvds registers the key types "EC" and
"ML-DSA-*" under OpenSSL's own names (libssl recognises keys by name), so without it a plain
fetch -- EC key generation for an ECDHE share, say -- may pick wvds and fail.
"""
from __future__ import annotations

import re

import pytest

from support.targets import HOST, ROOT

from .prov_support import FIPS_CNF, openssl, write_cnf


@pytest.fixture(params=["fips", "default"])
def cnf(request, client_cnfs):
    return client_cnfs(HOST.arch, fips=request.param == "fips")


def test_provider_is_listed(cnf):
    r = openssl(cnf, "list", "-providers")
    out = r.stdout.decode()
    assert r.returncode == 0 and "WvdS crypto_service key provider" in out and "status: active" in out, out


@pytest.mark.parametrize("genpkey", [["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                                     ["-algorithm", "ML-DSA-65"]])
def test_ordinary_keys_still_work(cnf, pki, tmp_path, genpkey):
    key = tmp_path / "ordinary.key"
    r = openssl(cnf, "genpkey", *genpkey, "-out", str(key))
    assert r.returncode == 0, r.stderr.decode()
    r = openssl(cnf, "req", "-new", "-key", str(key), "-subj", "/CN=ordinary", "-out", str(tmp_path / "o.csr"))
    assert r.returncode == 0, r.stderr.decode()
    r = openssl(cnf, "req", "-in", str(tmp_path / "o.csr"), "-verify", "-noout")
    assert r.returncode == 0, r.stderr.decode()
    r = openssl(cnf, "pkey", "-in", str(pki.server_key), "-pubout")
    assert r.returncode == 0, r.stderr.decode()


def test_without_the_default_property_plain_fetches_can_land_in_wvds(client_cnfs, tmp_path):
    """Why docs/provider.md insists on `?provider!=wvds`: drop it, list wvds first, and EC key
    generation fails (which provider a plain fetch picks depends on the order they were loaded)."""
    client_cnfs(HOST.arch)  # builds the provider
    cnf = write_cnf(tmp_path / "careless.cnf", HOST.arch, None)
    text = cnf.read_text().replace("default_properties = ?provider!=wvds\n", "")
    default, wvds = "default = default_sect\n", "wvds = wvds_sect\n"
    cnf.write_text(text.replace(default + wvds, wvds + default))
    r = openssl(cnf, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    assert r.returncode == 1 and b"operation not supported for this keytype" in r.stderr, r.stderr


def test_the_tests_use_the_documented_configuration():
    """docs/provider.md's openssl.cnf and the one these tests write say the same (paths aside)."""
    def settings(text: str) -> list[str]:
        lines = [line.split("#")[0].strip() for line in text.splitlines()]
        lines = [re.sub(r"^(\.include|module =) .*", r"\1 PATH", line) for line in lines]
        return [line for line in lines if line and not line.startswith("config_diagnostics")]

    doc = (ROOT / "docs" / "provider.md").read_text()
    documented = doc.split("```ini\n", 1)[1].split("```", 1)[0]
    assert settings(documented) == settings(FIPS_CNF.format(fipsmodule="x", module="y"))
