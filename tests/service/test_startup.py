"""Start-up: config validation with precise messages; refusal to run without a working FIPS provider."""
import json
import shutil
import subprocess

import pytest

from support.fips import OPENSSL_CNF
from support.service import ServiceProcess, base_config
from support.targets import HOST

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()


def check_config(programs, env, path) -> subprocess.CompletedProcess:
    return subprocess.run(programs.argv("wvds_crypto_service", "--config", path, "--check-config"),
                          env=programs.env(env), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("doc,messages", [
    ("{", ["line 1 column 2: invalid JSON"]),
    ("[]", ["(top level): must be an object"]),
    ({"access": {}}, ["access: no client is allowed"]),
    ({"access": {"allow_uids": ["root"]}}, ["access.allow_uids: must be a list of numeric ids"]),
    ({"access": {"allow_uids": [0]}, "socket": {"path": "relative.sock"}}, ["socket.path: must be an absolute path"]),
    ({"access": {"allow_uids": [0]}, "socket": {"mode": "rw"}}, ["socket.mode: must be an octal file mode"]),
    ({"access": {"allow_uids": [0]}, "limits": {"slots_per_client": 0, "rate_limit": {"burst": -1}}},
     ["limits.slots_per_client: must be 1..64", "limits.rate_limit.burst: must be > 0"]),
    ({"access": {"allow_uids": [0]}, "limits": {"rate_limit": {"per": "connection"}}},
     ['limits.rate_limit.per: must be "uid" or "gid"']),
    ({"access": {"allow_uids": [0]}, "limits": {"gcm_invocation_limit": 2**33}},
     ["limits.gcm_invocation_limit: must be 1..4294967296"]),
    ({"access": {"allow_uids": [0]}, "sockt": {}}, ["sockt: unknown field (misspelled?)"]),
    ({"access": {"allow_uids": [0]}, "grants": [{"owner_uid": 0, "label": "k", "usage": ["fly"]}]},
     ["grants[0].usage: unknown usage \"fly\""]),
    ({"access": {"allow_uids": [0]}, "keystore": {}}, ["keystore.backend: required"]),
    ({"access": {"allow_uids": [0]}, "log": {"level": "loud"}}, ["log.level: must be one of"]),
], ids=lambda v: None)
def test_invalid_config_names_file_field_and_problem(programs, fips_env, tmp_path, doc, messages):
    path = tmp_path / "config.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    r = check_config(programs, fips_env, path)
    assert r.returncode == 2, r.stdout + r.stderr
    for m in messages:
        assert f"{path}: {m}" in r.stderr, r.stderr


def test_missing_config_file(programs, fips_env, tmp_path):
    r = check_config(programs, fips_env, tmp_path / "nope.json")
    assert r.returncode == 2 and "nope.json: file not found" in r.stderr


def test_valid_config_passes_check(programs, fips_env, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(base_config(tmp_path)))
    r = check_config(programs, fips_env, path)
    assert r.returncode == 0 and "OK" in r.stdout


def test_unknown_keystore_backend_is_a_startup_error(programs, fips_env, tmp_path):
    svc = ServiceProcess(HOST, fips_env, tmp_path, base_config(tmp_path, keystore={
        "backend": "floppy"}), programs=programs)
    with pytest.raises(RuntimeError, match="unknown backend 'floppy'"):
        svc.start()


def test_refuses_to_start_when_the_fips_module_is_tampered(programs, fips_env, tmp_path):
    """A fips.so that no longer matches its fipsinstall MAC fails its self-test: no service."""
    target = programs.target
    modules = tmp_path / "modules"
    modules.mkdir()
    shutil.copy(target.openssl_root / "lib" / "ossl-modules" / "fips.so", modules / "fips.so")
    fipsmodule = tmp_path / "fipsmodule.cnf"
    target.run(target.openssl_root / "bin" / "openssl", "fipsinstall", "-module", modules / "fips.so",
               "-out", fipsmodule)
    blob = bytearray((modules / "fips.so").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (modules / "fips.so").write_bytes(bytes(blob))
    cnf = tmp_path / "openssl.cnf"
    cnf.write_text(OPENSSL_CNF.format(fipsmodule=fipsmodule))
    env = dict(fips_env, OPENSSL_CONF=str(cnf), OPENSSL_MODULES=str(modules))
    svc = ServiceProcess(target, env, tmp_path, base_config(tmp_path), programs=programs)
    with pytest.raises(RuntimeError) as e:
        svc.start()
    assert "exited with 1" in str(e.value) and "FIPS provider" in str(e.value)


@pytest.mark.parametrize("configured, cpus, expected", [(50, 2, 50), (50, 64, 50), (50, 1, 0), (0, 4, 0), (10_000, 1, 0)])
def test_serving_threads_do_not_spin_on_a_single_cpu(configured, cpus, expected):
    """limits.spin_us applies with more than one CPU online; on one, spinning only keeps the client off the CPU
    (measured with CPU 1 taken offline: docs/performance.md)."""
    from wvds.crypto_service.service import spin_for
    assert spin_for(configured, cpus) == expected
