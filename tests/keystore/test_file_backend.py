"""The file backend: damaged or tampered key files, device secret and passphrase handling, permissions,
crash leftovers, one service per store, and a store written by version 1 that later versions must open."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa

from support.keystore_backends import copy_fixture_store, make_backend
from support.service import start_fails
from wvds.client import Client, ServiceStatusError
from wvds.protocol.constants import Algorithm, KeyFormat, Status

@pytest.fixture
def fb(request, tmp_path, fips_env):
    return make_backend("file", request, tmp_path, fips_env)


def test_damaged_or_tampered_key_files_are_reported_by_id_and_skipped(fb):
    svc = fb.service()
    with svc, Client(svc.socket) as c:
        ids = [c.generate_key(Algorithm.AES_256_GCM, label=f"key{i}").key_id for i in range(5)]
        sealed = c.encrypt(ids[4], b"survivor")
    files = {k: fb.directory / "keys" / f"{k:08x}.key" for k in ids}
    flipped, relabelled, truncated, swapped, intact = ids
    blob = bytearray(files[flipped].read_bytes())
    blob[-20] ^= 1  # ciphertext/tag
    files[flipped].write_bytes(bytes(blob))
    files[relabelled].write_bytes(files[relabelled].read_bytes().replace(b'"label":"key1"', b'"label":"keyX"'))
    files[truncated].write_bytes(files[truncated].read_bytes()[:30])
    shutil.copy(files[intact], files[swapped])  # another key's (valid) file under this id's name
    with svc, Client(svc.socket) as c:
        assert c.decrypt(intact, sealed) == b"survivor"
        assert [k for k, _ in c.list_keys()] == [intact]
        reported = c.status()["keystore"]["unreadable_keys"]
        for k in (flipped, relabelled, truncated, swapped):
            with pytest.raises(ServiceStatusError) as e:
                c.describe_key(k)
            assert e.value.status == Status.KEY_NOT_FOUND
    assert sorted(reported) == sorted(f"0x{k:08x}" for k in ids[:4])
    log = [json.loads(line) for line in svc.log().splitlines() if line.startswith("{")]
    skipped = {rec["key_id"]: rec["reason"] for rec in log if rec["msg"] == "stored key unreadable, skipped"}
    assert "authentication failed" in skipped[f"0x{flipped:08x}"]
    assert "authentication failed" in skipped[f"0x{relabelled:08x}"]  # metadata is authenticated too
    assert "truncated" in skipped[f"0x{truncated:08x}"]
    assert "not the key its name says" in skipped[f"0x{swapped:08x}"]
    assert files[flipped].exists()  # evidence is left in place


def test_a_key_file_from_another_store_does_not_open(fb, request, tmp_path, fips_env):
    (tmp_path / "other").mkdir()
    other = make_backend("file", request, tmp_path / "other", fips_env)
    other.settings["secret_file"] = fb.settings["secret_file"]  # even with the same device secret
    svc, svc2 = fb.service(), other.service()
    with svc, Client(svc.socket) as c:
        c.generate_key(Algorithm.AES_256_GCM)
    with svc2, Client(svc2.socket) as c:
        foreign = c.generate_key(Algorithm.AES_256_GCM).key_id
    shutil.copy(other.directory / "keys" / f"{foreign:08x}.key", fb.directory / "keys")
    with svc, Client(svc.socket) as c:
        assert c.status()["keystore"]["unreadable_keys"] == [f"0x{foreign:08x}"]


def test_wrong_or_unusable_device_secret(fb):
    svc = fb.service()
    with svc, Client(svc.socket) as c:
        c.generate_key(Algorithm.AES_256_GCM)
    secret = Path(fb.settings["secret_file"])
    good = secret.read_bytes()
    secret.write_bytes(os.urandom(32))
    start_fails(svc, "wrong device secret")
    secret.write_bytes(good[:16])
    start_fails(svc, "at least 32 random bytes")
    secret.write_bytes(good)
    secret.chmod(0o644)
    start_fails(svc, "accessible to group or others", "chmod 0600")
    secret.chmod(0o600)
    start_fails(fb.service(secret_file=str(secret) + ".missing"), "device secret file not found")
    with svc:
        pass


def test_passphrase_from_environment_or_credential_file(fb, tmp_path):
    env = {"WVDS_TEST_PASSPHRASE": "correct horse battery staple"}
    svc = fb.service(extra_env=env, secret_file=None, passphrase_env="WVDS_TEST_PASSPHRASE",
                     pbkdf2_iterations=10000)
    with svc, Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        sealed = c.encrypt(key, b"pw")
        assert c.status()["keystore"]["kek"] == "passphrase"
    header = json.loads((fb.directory / "store.json").read_text())
    assert header["kek"]["kdf"] == "PBKDF2-HMAC-SHA256" and header["kek"]["iterations"] == 10000
    cred = tmp_path / "passphrase.cred"
    cred.write_text("correct horse battery staple\n")
    cred.chmod(0o600)
    svc2 = fb.service(secret_file=None, passphrase_file=str(cred))
    with svc2, Client(svc2.socket) as c:
        assert c.decrypt(key, sealed) == b"pw"
    start_fails(fb.service(extra_env={"WVDS_TEST_PASSPHRASE": "wrong horse battery staple"}, secret_file=None,
                           passphrase_env="WVDS_TEST_PASSPHRASE"), "wrong passphrase")
    start_fails(fb.service(secret_file=None, passphrase_env="WVDS_TEST_UNSET_VARIABLE"),
                "WVDS_TEST_UNSET_VARIABLE", "is not set")
    start_fails(fb.service(), "created with a passphrase")


@pytest.mark.parametrize("overrides,message", [
    ({"secret_file": None}, "keystore.secret_file: /etc/opt/wvds/keystore.secret: device secret file not found; "
                            "create it once per device with: head -c 32 /dev/urandom >"),
    ({"passphrase_env": "X"}, "give either secret_file or a passphrase"),
    ({"directory": "relative/dir"}, "keystore.directory: must be an absolute path"),
    ({"secret_fiel": "/x"}, "keystore.secret_fiel: unknown field for the file backend"),
    ({"pbkdf2_iterations": 5}, "keystore.pbkdf2_iterations: must be 10000..100000000"),
], ids=["no-secret", "two-secrets", "relative-dir", "typo", "iterations"])
def test_configuration_errors_name_the_field(fb, overrides, message):
    start_fails(fb.service(**overrides), message)


def test_directory_must_be_private_and_ours(fb, tmp_path):
    fb.directory.mkdir(mode=0o755)
    fb.directory.chmod(0o755)
    start_fails(fb.service(), "keystore.directory", "has mode 0755")
    fb.directory.chmod(0o700)
    link = tmp_path / "link"
    link.symlink_to(fb.directory)
    start_fails(fb.service(directory=str(link)), "symbolic link")
    os.chown(fb.directory, 65534, 65534)
    start_fails(fb.service(), "is owned by uid 65534")


def test_one_service_per_store_and_crash_leftovers(fb):
    svc = fb.service()
    with svc, Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        second = fb.service()
        second.socket = str(fb.workdir / "second.sock")
        second.config = {**second.config, "socket": {"path": second.socket}}
        second.config_path = fb.workdir / "second.json"
        second.log_path = fb.workdir / "second.log"
        start_fails(second, "in use by another running service")
    keys = fb.directory / "keys"
    (keys / f".{key:08x}.key.0011223344ff.tmp").write_bytes(b"half-written")  # a crash between write and rename
    (keys / "notes.txt").write_text("stray")
    with svc, Client(svc.socket) as c:
        assert [k for k, _ in c.list_keys()] == [key]
        assert c.status()["keystore"]["unreadable_keys"] == []
    assert not list(keys.glob(".*.tmp")) and (keys / "notes.txt").exists()


def test_missing_header_with_key_files_is_refused(fb):
    svc = fb.service()
    with svc, Client(svc.socket) as c:
        c.generate_key(Algorithm.AES_256_GCM)
    (fb.directory / "store.json").unlink()
    start_fails(svc, "holds key files but no store.json")


def test_newer_format_versions_are_reported_not_misread(fb):
    svc = fb.service()
    with svc, Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
    f = fb.directory / "keys" / f"{key:08x}.key"
    blob = bytearray(f.read_bytes())
    blob[8] = 2  # format version field
    f.write_bytes(bytes(blob))
    with svc:
        pass
    assert "format version 2 is not supported" in svc.log()


def test_a_version_1_store_opens_unchanged(fb, tmp_path):
    """tests/keystore/data/store-v1 was written by the first release (make_v1_store.py): every later version of
    the service must open it, or upgrading a device would lose its keys."""
    store, secret, manifest = copy_fixture_store("store-v1", tmp_path)
    svc = fb.service(directory=str(store), secret_file=str(secret))
    with svc, Client(svc.socket) as c:
        keys = dict(c.list_keys())
        assert keys == {int(k, 16): Algorithm[v["algorithm"]] for k, v in manifest["keys"].items()}
        for kid, info in manifest["keys"].items():
            kid = int(kid, 16)
            d = c.describe_key(kid)
            assert (d.label, d.usage, d.created) == (info["label"], info["usage"], info["created"])
            if info["algorithm"] == "AES_256_GCM":
                sealed = bytes.fromhex(info["sealed"])
                assert c.decrypt(kid, sealed, b"v1") == b"written by store format v1"
                assert d.uses == info["uses_reserved"]
            else:
                sig = c.mldsa_sign(kid, b"upgrade")
                mldsa.MLDSA44PublicKey.from_public_bytes(bytes.fromhex(info["public_key"])).verify(sig, b"upgrade")
        assert c.export_key(int(manifest["exportable"], 16), KeyFormat.SEED).hex() == manifest["seed"]
