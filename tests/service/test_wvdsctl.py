"""wvdsctl against the real service: every command family, files and hex, --json, exit statuses."""
import json
import subprocess

import pytest

from support.service import clib_path

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()


@pytest.fixture
def ctl(service, programs):
    env = programs.env({"WVDS_CLIENT_LIB": str(clib_path(programs.target)), "WVDS_SOCKET": service.socket,
                        "PATH": "/usr/bin:/bin"})

    def run(*args, check=True, input=None):
        r = subprocess.run(programs.argv("wvdsctl", *args), env=env, capture_output=True, input=input, timeout=60)
        if check:
            assert r.returncode == 0, r.stderr.decode()
        return r
    return run


def js(r) -> dict:
    return json.loads(r.stdout)


def test_status(ctl):
    s = js(ctl("--json", "status"))
    assert s["fips"]["self_test_passed"] is True and s["version"] == "0.2.0"


def test_encrypt_decrypt_files(ctl, tmp_path):
    key = js(ctl("--json", "generate", "aes-256-gcm", "--label", "cli"))["key_id"]
    (tmp_path / "pt").write_bytes(b"sensor,21.5C\n" * 100)
    ctl("--out", tmp_path / "sealed", "encrypt", key, "--in", tmp_path / "pt", "--aad-hex", "0102")
    ctl("--out", tmp_path / "back", "decrypt", key, "--in", tmp_path / "sealed", "--aad-hex", "0102")
    assert (tmp_path / "back").read_bytes() == (tmp_path / "pt").read_bytes()
    r = ctl("decrypt", key, "--in", tmp_path / "sealed", check=False)  # AAD missing
    assert r.returncode == 1 and b"DECRYPTION_FAILED" in r.stderr


@pytest.mark.parametrize("alg", ["ml-dsa-65", "slh-dsa-sha2-128f"])
def test_sign_verify_and_inline_public_key(ctl, tmp_path, alg):
    k = js(ctl("--json", "generate", alg))
    sig = ctl("sign", k["key_id"], "--hex", "aa55", "--context", "fw").stdout.decode().strip()
    assert js(ctl("--json", "verify", k["key_id"], "--hex", "aa55", "--sig-hex", sig, "--context", "fw"))["valid"]
    (tmp_path / "pk").write_bytes(bytes.fromhex(k["public_key"]))
    ok = js(ctl("--json", "verify", "--pubkey-alg", alg, "--pubkey-file", tmp_path / "pk", "--hex", "aa55",
                "--sig-hex", sig, "--context", "fw"))
    assert ok["valid"] is True
    r = ctl("verify", k["key_id"], "--hex", "aa56", "--sig-hex", sig, "--context", "fw", check=False)
    assert r.returncode == 1 and b"SIGNATURE_INVALID" in r.stderr


def test_kem_and_key_management(ctl):
    k = js(ctl("--json", "kem-keygen", "ml-kem-768"))
    enc = js(ctl("--json", "kem-encaps", k["key_id"]))
    dec = js(ctl("--json", "kem-decaps", k["key_id"], "--ct-hex", enc["ciphertext"]))
    assert enc["aes_key_id"] != dec["aes_key_id"]
    listed = [e["key_id"] for e in js(ctl("--json", "list"))["keys"]]
    assert k["key_id"] in listed and dec["aes_key_id"] in listed
    d = js(ctl("--json", "describe", k["key_id"]))
    assert d["algorithm"] == "ML_KEM_768"
    ctl("delete", k["key_id"])
    r = ctl("--json", "describe", k["key_id"], check=False)
    assert r.returncode == 1 and js(r)["error"] == "KEY_NOT_FOUND"


def test_random_and_usage_errors(ctl):
    assert len(bytes.fromhex(ctl("random", "16").stdout.decode().strip())) == 16
    assert ctl("encrypt", "0x1", check=False).returncode == 2  # no input given
    assert ctl("generate", "rot13", check=False).returncode == 2
    r = ctl("random", "70000", check=False)
    assert r.returncode == 1 and b"PAYLOAD_TOO_LARGE" in r.stderr


def test_service_unreachable(ctl, tmp_path):
    r = ctl("--socket", tmp_path / "none.sock", "status", check=False)
    assert r.returncode == 3 and b"ERR_CONNECT" in r.stderr
