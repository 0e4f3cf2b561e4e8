"""How a process gets (or is refused) FIPS mode: configuration by environment, wrong libcrypto, broken FIPS setup.

Each case needs a fresh process, so these run one-off child Pythons (see fips_process.run_python).
"""
import json
import re

import pytest

from support.fips_process import LIBDIR, MODULES, child_env, fips_env, openssl_conf, run_python, scratch

SYSTEM_LIBCRYPTO = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"

LOAD_AND_REPORT = """
import json, wvds.ossl as o
from wvds.ossl import fips
try:
    info = o.load({args})
except o.OsslError as e:
    print(json.dumps({{"error": str(e), "type": type(e).__name__}}))
else:
    print(json.dumps({{"providers": info.providers, "md5": fips.algorithm_available("digest", "MD5"),
                       "fips_version": info.fips_version, "ok": o.random_bytes(4).hex()}}))
"""


def load_in_child(env, args="", prelude=""):
    r = run_python(prelude + LOAD_AND_REPORT.format(args=args), env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_configuration_from_the_environment_activates_only_fips_and_base():
    out = load_in_child(fips_env())
    assert out["providers"] == ["base", "fips"] and out["fips_version"] == "3.6.3", out
    assert out["md5"] is False


def test_explicit_configuration_in_a_fresh_process():
    out = load_in_child(child_env(), f"{str(openssl_conf())!r}, {str(MODULES)!r}")
    assert "fips" in out["providers"] and out["md5"] is False, out


@pytest.mark.parametrize("how", ["soname", "path"])
def test_libcrypto_older_than_3_6_is_refused(how):
    env = child_env()
    del env["LD_LIBRARY_PATH"]  # the soname now resolves to Debian's OpenSSL 3.0
    if how == "path":
        env["WVDS_LIBCRYPTO"] = SYSTEM_LIBCRYPTO
    out = load_in_child(env)
    assert out["type"] == "OsslError" and "needs OpenSSL 3.6" in out["error"], out
    assert "OpenSSL 3.0." in out["error"], out


def test_a_second_libcrypto_beside_pythons_is_refused():
    env = child_env()
    del env["LD_LIBRARY_PATH"]
    out = load_in_child(env, f"libcrypto={str(LIBDIR / 'libcrypto.so.3')!r}", prelude="import hashlib\n")
    assert "2 different libcrypto files are mapped" in out["error"], out
    assert SYSTEM_LIBCRYPTO in out["error"] and "LD_LIBRARY_PATH" in out["error"], out


def test_configuration_without_the_fips_provider_is_refused():
    cnf = scratch() / "base-only.cnf"
    cnf.write_text("openssl_conf = init\n[init]\nproviders = prov\n[prov]\nbase = base\n[base]\nactivate = 1\n")
    out = load_in_child(child_env(), f"{str(cnf)!r}, {str(MODULES)!r}")
    assert "FIPS provider cannot be activated" in out["error"], out
    print(out["error"])


def test_tampered_fips_module_configuration_is_refused():
    fipsmodule = openssl_conf().parent / "fipsmodule.cnf"  # the session's, read only
    text = fipsmodule.read_text()
    mac = re.search(r"module-mac = ([0-9A-F:]+)", text).group(1)
    bad = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    tampered = scratch() / "tampered-fipsmodule.cnf"
    tampered.write_text(text.replace(mac, bad))
    cnf = scratch() / "tampered.cnf"
    cnf.write_text(openssl_conf().read_text().replace(str(fipsmodule), str(tampered)))
    out = load_in_child(child_env(), f"{str(cnf)!r}, {str(MODULES)!r}")
    assert "FIPS provider cannot be activated" in out["error"], out
    assert "self test post failure" in out["error"], out


def test_missing_fips_module_is_refused(tmp_path):
    out = load_in_child(child_env(), f"{str(openssl_conf())!r}, {str(tmp_path)!r}")
    assert "FIPS provider cannot be activated" in out["error"], out
    print(out["error"])


def test_operations_before_load_are_refused_and_import_loads_nothing():
    code = ("import wvds.ossl as o, wvds.ossl._lib as L\n"
            "assert L._lib is None and L.mapped_libcrypto() == [], L.mapped_libcrypto()\n"
            "try:\n    o.random_bytes(1)\nexcept o.OsslError as e:\n    print(e)\n")
    r = run_python(code, child_env())
    assert r.returncode == 0 and "call wvds.ossl.load() first" in r.stdout, r.stdout + r.stderr


def test_explicit_configuration_after_python_used_libcrypto_still_refuses_non_fips():
    """hashlib activated libcrypto's fallback "default" provider before load(): listed, but unreachable."""
    out = load_in_child(child_env(), f"{str(openssl_conf())!r}, {str(MODULES)!r}",
                        prelude="import hashlib\nhashlib.sha256(b'x')\n")
    assert out["providers"] == ["base", "default", "fips"], out
    assert out["md5"] is False, out
