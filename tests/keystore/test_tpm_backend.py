"""The TPM 2.0 backend against swtpm: the KEK sealing (auth value, PCR binding, this-TPM-only), the start-up
errors an operator must be able to act on, and ECDSA P-256 keys generated and used inside the TPM."""
from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from support.tpm import Swtpm

from support.keystore_backends import make_backend
from support.service import start_fails
from wvds.client import Client, ServiceStatusError
from wvds.protocol.constants import Algorithm, EcdsaFlags, HashAlg, KeyFormat, KeyUsage, Status


@pytest.fixture
def tb(request, tmp_path, fips_env):
    return make_backend("tpm", request, tmp_path, fips_env)


def test_kek_is_sealed_by_the_tpm(tb):
    svc = tb.service()
    with svc, Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        sealed = c.encrypt(key, b"tpm")
        assert c.status()["keystore"]["kek"] == "tpm-sealed"
    kek = json.loads((tb.directory / "store.json").read_text())["kek"]
    assert kek["source"] == "tpm" and kek["pcrs"] == [] and len(bytes.fromhex(kek["private"])) > 32
    with svc, Client(svc.socket) as c:
        assert c.decrypt(key, sealed) == b"tpm"


def test_auth_value_is_required_and_checked(tb):
    svc = tb.service(extra_env={"WVDS_TEST_TPM_AUTH": "right-auth"}, auth_env="WVDS_TEST_TPM_AUTH")
    with svc, Client(svc.socket) as c:
        c.generate_key(Algorithm.ML_DSA_44)
    start_fails(tb.service(extra_env={"WVDS_TEST_TPM_AUTH": "wrong-auth"}, auth_env="WVDS_TEST_TPM_AUTH"),
                "the TPM refused to unseal the KEK: wrong auth value")
    start_fails(tb.service(), "keystore.auth_file: the KEK of this store is sealed with an auth value")
    with svc, Client(svc.socket) as c:
        assert len(c.list_keys()) == 1


def test_an_auth_value_for_a_store_sealed_without_one_is_refused_before_the_tpm(tb):
    """Sent to the TPM, a wrong auth value would count towards its dictionary-attack lockout."""
    svc = tb.service()
    with svc, Client(svc.socket) as c:
        c.generate_key(Algorithm.ML_DSA_44)
    start_fails(tb.service(extra_env={"WVDS_TEST_TPM_AUTH": "some-auth"}, auth_env="WVDS_TEST_TPM_AUTH"),
                "the KEK of this store is sealed without an auth value")
    with svc, Client(svc.socket) as c:
        assert len(c.list_keys()) == 1


def test_pcr_binding(tb, swtpm):
    svc = tb.service(pcrs=[16])
    with svc, Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
    with svc, Client(svc.socket) as c:  # same PCR values: unseals
        c.encrypt(key, b"x")
    start_fails(tb.service(pcrs=[16, 23]), "keystore.pcrs: the KEK of this store is sealed to sha256 PCRs [16]")
    swtpm.extend_pcr(16)  # e.g. a different boot chain was measured
    start_fails(svc, "PCR mismatch")


def test_missing_tpm(tb):
    start_fails(tb.service(tcti="swtpm:host=127.0.0.1,port=1"), "keystore.tcti: no TPM reachable through")
    start_fails(tb.service(tcti="device:/dev/wvds-no-such-tpm"), "keystore.tcti: no TPM reachable through")


def test_another_tpm_cannot_open_the_store(tb, tmp_path):
    svc = tb.service()
    with svc, Client(svc.socket) as c:
        c.generate_key(Algorithm.AES_256_GCM)
    with Swtpm(tmp_path / "other-tpm") as other:
        start_fails(tb.service(tcti=other.tcti),  # its primary key differs: refused before anything is unsealed
                    "the TPM's storage primary key is not the one this store was created with", "another TPM")


def test_ecdsa_p256_keys_live_and_sign_in_the_tpm(tb):
    svc = tb.service(native=["ecdsa-p256"])
    with svc, Client(svc.socket) as c:
        created = c.generate_key(Algorithm.ECDSA_P256, label="device-id")
        soft = c.generate_key(Algorithm.ECDSA_P256, KeyUsage.SIGN | KeyUsage.VERIFY | KeyUsage.EXPORTABLE)
        assert c.status()["keystore"]["native_keys"] == 1  # the exportable one cannot live in the TPM
        assert len(c.export_key(soft.key_id, KeyFormat.RAW)) == 32
        with pytest.raises(ServiceStatusError) as e:
            c.export_key(created.key_id, KeyFormat.RAW)
        assert e.value.status == Status.PERMISSION_DENIED
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), created.public_key)
    long_data = bytes(range(256)) * 240  # 60 KiB: hashed in the FIPS provider, one TPM command signs
    with svc, Client(svc.socket) as c:
        assert c.status()["keystore"]["native_keys"] == 1
        assert c.export_public(created.key_id).public_key == created.public_key
        for data, hash_alg, h in [(b"csr", HashAlg.DEFAULT, hashes.SHA256()), (long_data, HashAlg.SHA256,
                                                                                hashes.SHA256()),
                                  (b"384", HashAlg.SHA384, hashes.SHA384())]:
            pub.verify(c.ecdsa_sign(created.key_id, data, hash_alg), data, ec.ECDSA(h))
        digest = hashes.Hash(hashes.SHA256())
        digest.update(b"prehashed")
        sig = c.ecdsa_sign(created.key_id, digest.finalize(), HashAlg.DEFAULT, EcdsaFlags.PREHASHED)
        pub.verify(sig, b"prehashed", ec.ECDSA(hashes.SHA256()))
        assert c.ecdsa_verify(created.key_id, b"csr", c.ecdsa_sign(created.key_id, b"csr"))
        c.delete_key(created.key_id)
    with svc, Client(svc.socket) as c:
        assert [k for k, _ in c.list_keys()] == [soft.key_id]
        assert c.status()["keystore"]["native_keys"] == 0


def test_owner_hierarchy_auth(tb, tmp_path):
    from tpm2_pytss.constants import ESYS_TR
    with Swtpm(tmp_path / "owned-tpm") as tpm:
        ctx = tpm.esapi()
        try:
            ctx.hierarchy_change_auth(ESYS_TR.OWNER, b"owner-secret")
        finally:
            ctx.close()
        start_fails(tb.service(tcti=tpm.tcti), "storage primary key", "wrong owner hierarchy auth")
        svc = tb.service(tcti=tpm.tcti, extra_env={"WVDS_TEST_OWNER_AUTH": "owner-secret"},
                         owner_auth_env="WVDS_TEST_OWNER_AUTH")
        with svc, Client(svc.socket) as c:
            c.generate_key(Algorithm.AES_256_GCM)
        start_fails(tb.service(tcti=tpm.tcti, extra_env={"WVDS_TEST_OWNER_AUTH": "x" * 65},
                               owner_auth_env="WVDS_TEST_OWNER_AUTH"),
                    "keystore.owner_auth_env", "at most 64 bytes")


def test_storage_primary_key_is_pinned(tb):
    """The primary that salts the unseal session must be the one the store was created with: its name is
    recorded at creation and compared first (an active attacker on the bus could hand us their own)."""
    svc = tb.service()
    with svc, Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
    path = tb.directory / "store.json"
    doc = json.loads(path.read_text())
    name = bytes.fromhex(doc["kek"]["primary_name"])
    assert len(name) == 34 and name[:2] == b"\x00\x0b", name.hex()  # TPM2B_NAME: SHA-256 name of the primary
    with svc, Client(svc.socket) as c:  # the same TPM: the same primary, verified
        assert [k for k, _ in c.list_keys()] == [key]
    forged = dict(doc, kek=dict(doc["kek"], primary_name=(name[:2] + bytes(32)).hex()))
    path.write_text(json.dumps(forged, indent=2, sort_keys=True) + "\n")
    start_fails(svc, "the TPM's storage primary key is not the one this store was created with")
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    with svc, Client(svc.socket) as c:
        assert [k for k, _ in c.list_keys()] == [key]
