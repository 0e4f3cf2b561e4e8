"""The PKCS#11 backend against SoftHSMv2: the KEK inside the token, start-up errors (module, token, PIN, KEK),
and AES-256-GCM / ECDSA keys generated and used inside the token."""
from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from support.keystore_backends import make_backend
from support.service import start_fails
from support.softhsm import PIN, TOKEN_LABEL
from wvds.client import Client, ServiceStatusError
from wvds.protocol.constants import Algorithm, KeyUsage, Status


@pytest.fixture
def pb(request, tmp_path, fips_env):
    return make_backend("pkcs11", request, tmp_path, fips_env)


def token_objects(softhsm, label: str = TOKEN_LABEL) -> dict[str, dict]:
    """label -> attributes of the token's objects, read by a separate PKCS#11 client (this test process)."""
    import pkcs11
    from pkcs11 import Attribute
    os.environ["SOFTHSM2_CONF"] = str(softhsm.conf)
    token = pkcs11.lib(softhsm.module).get_token(token_label=label)
    out = {}
    with token.open(user_pin=PIN) as s:
        for obj in s.get_objects():
            attrs = {"class": obj[Attribute.CLASS]}
            for a in ("SENSITIVE", "EXTRACTABLE"):
                try:
                    attrs[a.lower()] = obj[getattr(Attribute, a)]
                except Exception:  # noqa: BLE001  public objects have no such attribute
                    pass
            out.setdefault(obj[Attribute.LABEL], []).append(attrs)
    return out


def test_kek_lives_in_the_token(pb, softhsm):
    svc = pb.service()
    with svc, Client(svc.socket) as c:
        key = c.generate_key(Algorithm.ML_KEM_768).key_id
    kek = json.loads((pb.directory / "store.json").read_text())["kek"]
    assert kek == {"source": "pkcs11", "kek_label": pb.settings["kek_label"], "mechanism": "CKM_AES_GCM"}
    (obj,) = token_objects(softhsm)[pb.settings["kek_label"]]
    assert obj["sensitive"] is True and obj["extractable"] is False
    with svc, Client(svc.socket) as c:
        assert [k for k, _ in c.list_keys()] == [key]


def test_pin_errors(pb, tmp_path):
    start_fails(pb.service(extra_env={"WVDS_TEST_TOKEN_PIN": "0000-wrong"}),
                "keystore.pin_env: wrong PIN for token 'wvds-test'")
    start_fails(pb.service(pin_env="WVDS_TEST_NO_SUCH_VARIABLE"), "WVDS_TEST_NO_SUCH_VARIABLE", "is not set")
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o640)
    start_fails(pb.service(pin_env=None, pin_file=str(pin_file)), "accessible to group or others")
    pin_file.chmod(0o600)
    svc = pb.service(pin_env=None, pin_file=str(pin_file))
    with svc:
        pass


def test_module_and_token_errors(pb):
    start_fails(pb.service(module="/usr/lib/no-such-pkcs11.so"), "keystore.module", "PKCS#11 module not found")
    start_fails(pb.service(token_label="no-such-token"), "keystore.token_label: no token labelled 'no-such-token'",
                "present: 'wvds-test'")
    start_fails(pb.service(token_label=None), "keystore.token_label: required for the pkcs11 backend")


def test_reinitialised_token_is_a_clear_error(pb, softhsm):
    softhsm.init_token("wvds-reinit", PIN)
    svc = pb.service(token_label="wvds-reinit")
    with svc, Client(svc.socket) as c:
        c.generate_key(Algorithm.AES_256_GCM)
    softhsm.delete_token("wvds-reinit")
    softhsm.init_token("wvds-reinit", PIN)
    start_fails(svc, "is not in token 'wvds-reinit'", "re-initialised")


def test_aes_and_ecdsa_keys_live_and_work_in_the_token(pb, softhsm):
    svc = pb.service(native=["aes-256-gcm", "ecdsa-p256", "ecdsa-p384"])
    with svc, Client(svc.socket) as c:
        aes = c.generate_key(Algorithm.AES_256_GCM, label="in-token").key_id
        sealed = [c.encrypt(aes, b"hsm %d" % i, b"aad") for i in range(20)]
        p256 = c.generate_key(Algorithm.ECDSA_P256)
        p384 = c.generate_key(Algorithm.ECDSA_P384)
        soft = c.generate_key(Algorithm.AES_256_GCM, KeyUsage.ENCRYPT | KeyUsage.DECRYPT | KeyUsage.EXPORTABLE)
        assert c.status()["keystore"]["native_keys"] == 3
    objects = token_objects(softhsm)
    (aes_obj,) = objects[f"wvds-{aes:08x}"]
    assert aes_obj["sensitive"] is True and aes_obj["extractable"] is False
    assert len(objects[f"wvds-{p256.key_id:08x}"]) == 2  # private + public object
    assert f"wvds-{soft.key_id:08x}" not in objects
    with svc, Client(svc.socket) as c:
        assert [c.decrypt(aes, s, b"aad") for s in sealed] == [b"hsm %d" % i for i in range(20)]
        assert len({s[:12] for s in sealed}) == 20
        bad = bytearray(sealed[0])
        bad[-1] ^= 1
        with pytest.raises(ServiceStatusError) as e:
            c.decrypt(aes, bytes(bad), b"aad")
        assert e.value.status == Status.DECRYPTION_FAILED
        for created, curve, h in [(p256, ec.SECP256R1(), hashes.SHA256()), (p384, ec.SECP384R1(), hashes.SHA384())]:
            pub = ec.EllipticCurvePublicKey.from_encoded_point(curve, created.public_key)
            pub.verify(c.ecdsa_sign(created.key_id, b"tbs" * 1000), b"tbs" * 1000, ec.ECDSA(h))
        c.delete_key(aes)
        c.delete_key(p256.key_id)
    objects = token_objects(softhsm)
    assert f"wvds-{aes:08x}" not in objects and f"wvds-{p256.key_id:08x}" not in objects
    assert f"wvds-{p384.key_id:08x}" in objects
