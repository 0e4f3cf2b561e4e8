"""The TPM or the HSM disappears while the service runs, and comes back.

TPM (swtpm, keystore.native = ["ecdsa-p256"]): the KEK is unsealed once at start-up, so software
keys (AES, ML-DSA, even new ones) keep working without the TPM; keys that live in the TPM answer
with a clear status while it is gone (ECDSA_SIGN: CRYPTO_ERROR, logged; generating one:
STORAGE_ERROR) and work again as soon as the TPM is back (the service reconnects and re-creates its
storage primary key, which is deterministic).

HSM (SoftHSMv2, keystore.native = ["aes-256-gcm", "ecdsa-p256"]): the KEK stays inside the token,
so while the token is gone every operation that needs it fails with a clear status - creating a
key or persisting a counter reservation (STORAGE_ERROR), AES-GCM and ECDSA with keys in the token
(CRYPTO_ERROR, never a misleading DECRYPTION_FAILED) - software keys already loaded keep working,
and everything works again once the token is back: the service finds its objects again and, if the
token forgot the session, reinitialises the PKCS#11 library and logs in again (at most once a second).
"""
from __future__ import annotations

import shutil
import time

import pytest

import support.tpm
from support.service import RestartableService, base_config
from support.softhsm import PIN, TOKEN_LABEL, SoftHsm
from support.targets import HOST
from support.tpm import Swtpm
from wvds.client import Client, ServiceStatusError
from wvds.protocol.constants import Algorithm, KeyUsage, Status


def _status(call) -> Status:
    with pytest.raises(ServiceStatusError) as e:
        call()
    return e.value.status


def _software_keys_work(c: Client, aes: int, dsa: int) -> None:
    assert c.decrypt(aes, c.encrypt(aes, b"soft")) == b"soft"
    assert len(c.mldsa_sign(dsa, b"m")) == 2420


def test_tpm_disappears_and_returns(faults_fips_env, tmp_path, monkeypatch):
    tpm = Swtpm(tmp_path / "swtpm").start()
    try:
        ks = {"backend": "tpm", "directory": str(tmp_path / "keystore"), "tcti": tpm.tcti, "native": ["ecdsa-p256"]}
        svc = RestartableService(HOST, faults_fips_env, tmp_path, base_config(tmp_path, keystore=ks,
                                                                                log={"level": "info"}))
        with svc, Client(svc.socket) as c:
            native = c.generate_key(Algorithm.ECDSA_P256).key_id
            assert c.status()["keystore"]["native_keys"] == 1
            aes = c.generate_key(Algorithm.AES_256_GCM).key_id
            dsa = c.generate_key(Algorithm.ML_DSA_44).key_id
            c.ecdsa_sign(native, b"before")

            port = tpm.port
            tpm.stop()  # --- the TPM is gone
            _software_keys_work(c, aes, dsa)
            assert _status(lambda: c.ecdsa_sign(native, b"gone")) == Status.CRYPTO_ERROR
            assert _status(lambda: c.generate_key(Algorithm.ECDSA_P256)) == Status.STORAGE_ERROR
            extra = c.generate_key(Algorithm.AES_256_GCM).key_id  # the KEK is in memory: software keys still fine
            _software_keys_work(c, extra, dsa)

            monkeypatch.setattr(support.tpm, "_free_port_pair", lambda: port)
            tpm.start()  # --- back, same TPM state, same address
            sig = c.ecdsa_sign(native, b"back")
            assert c.ecdsa_verify(native, b"back", sig)
            again = c.generate_key(Algorithm.ECDSA_P256).key_id
            c.ecdsa_sign(again, b"new native key")
            assert c.status()["keystore"]["native_keys"] == 2
        assert "ECDSA in the TPM failed" in svc.log()
    finally:
        tpm.stop()


def test_hsm_token_disappears_and_returns(faults_fips_env, tmp_path):
    hsm = SoftHsm(tmp_path / "softhsm")
    hsm.init_token(TOKEN_LABEL, PIN)
    ks = {"backend": "pkcs11", "directory": str(tmp_path / "keystore"), "module": hsm.module,
          "token_label": TOKEN_LABEL, "pin_env": "WVDS_TEST_TOKEN_PIN", "native": ["aes-256-gcm", "ecdsa-p256"]}
    svc = RestartableService(HOST, faults_fips_env, tmp_path, base_config(tmp_path, keystore=ks, log={"level": "info"}),
                             extra_env={**hsm.env, "WVDS_TEST_TOKEN_PIN": PIN})
    with svc, Client(svc.socket) as c:
        native_aes = c.generate_key(Algorithm.AES_256_GCM).key_id
        native_ec = c.generate_key(Algorithm.ECDSA_P256).key_id
        soft_aes = c.generate_key(Algorithm.AES_256_GCM, KeyUsage.ENCRYPT | KeyUsage.DECRYPT
                                  | KeyUsage.EXPORTABLE).key_id  # exportable: always a software key
        dsa = c.generate_key(Algorithm.ML_DSA_44).key_id
        sealed = c.encrypt(native_aes, b"before")
        assert c.status()["keystore"]["native_keys"] == 2

        moved = tmp_path / "tokens-away"
        shutil.move(hsm.tokens, moved)  # --- the token is gone
        try:
            _software_keys_work(c, soft_aes, dsa)
            assert _status(lambda: c.generate_key(Algorithm.ML_DSA_44)) == Status.STORAGE_ERROR
            assert _status(lambda: c.encrypt(native_aes, b"x")) == Status.CRYPTO_ERROR
            assert _status(lambda: c.decrypt(native_aes, sealed)) == Status.CRYPTO_ERROR
            assert _status(lambda: c.ecdsa_sign(native_ec, b"x")) == Status.CRYPTO_ERROR
        finally:
            shutil.move(moved, hsm.tokens)  # --- back
        time.sleep(1.1)  # reconnect attempts are at most once a second (the last failed one was just now)
        assert c.decrypt(native_aes, sealed) == b"before"
        assert c.decrypt(native_aes, c.encrypt(native_aes, b"after")) == b"after"
        sig = c.ecdsa_sign(native_ec, b"after")
        assert c.ecdsa_verify(native_ec, b"after", sig)
        new = c.generate_key(Algorithm.ML_DSA_44).key_id
        assert len(c.mldsa_sign(new, b"m")) == 2420
    with svc, Client(svc.socket) as c:  # and a restart finds everything, and remembers what was decrypted
        assert {native_aes, native_ec, soft_aes, dsa, new} <= {k for k, _ in c.list_keys()}
        assert _status(lambda: c.decrypt(native_aes, sealed)) == Status.NONCE_REUSE
        assert c.decrypt(native_aes, c.encrypt(native_aes, b"again")) == b"again"
