"""The same functional suite against every persistent backend (file, TPM/swtpm, PKCS#11/SoftHSM), through the
real service: persistence across restarts, AES counters, deletion, policy, concurrency, nothing in plaintext."""
from __future__ import annotations

import threading

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, mldsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from support.softhsm import PIN
from wvds.client import Client, ServiceStatusError
from wvds.crypto_service.keys import COUNTER_BLOCK
from wvds.protocol.constants import Algorithm, KeyFormat, KeyUsage, Status

# Also against the x86_64 binary (not the aarch64 one: the token and TPM libraries here are x86_64).
pytestmark = pytest.mark.binaries(native_only=True)

AES_RAW = bytes(range(0x40, 0x60))
MLDSA_SEED = bytes(range(0x80, 0xA0))


def status_of(call) -> Status:
    with pytest.raises(ServiceStatusError) as e:
        call()
    return e.value.status


def test_keys_persist_across_restarts_and_nothing_is_stored_in_plaintext(backend):
    svc = backend.service()
    with svc, Client(svc.socket) as c:
        aes = c.generate_key(Algorithm.AES_256_GCM, label="telemetry").key_id
        sealed = c.encrypt(aes, b"before restart", b"hdr")
        imported = c.import_key(Algorithm.AES_256_GCM, KeyFormat.RAW, AES_RAW).key_id
        dsa = c.import_key(Algorithm.ML_DSA_65, KeyFormat.SEED, MLDSA_SEED, label="fw-signing")
        kem = c.mlkem_keygen(Algorithm.ML_KEM_768)
        enc = c.mlkem_encaps(kem.key_id)
        kem_sealed = c.encrypt(enc.key_id, b"kem data")
        ecdsa = c.generate_key(Algorithm.ECDSA_P256, label="tls")
        before = {k for k, _ in c.list_keys()}
        ks = c.status()["keystore"]
    assert ks["backend"] == backend.name and ks["format_version"] == 1 and ks["unreadable_keys"] == []
    assert ks["directory"] == str(backend.directory) and PIN not in str(ks)
    assert len(before) == 6 and len(backend.key_files()) == 6

    # on disk: the directory and files are private, and no key material appears in any file
    assert oct(backend.directory.stat().st_mode & 0o777) == "0o700"
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in backend.key_files())
    disk = b"".join(p.read_bytes() for p in backend.directory.rglob("*") if p.is_file())
    assert AES_RAW not in disk and MLDSA_SEED not in disk and b"telemetry" in disk  # metadata stays readable

    with svc, Client(svc.socket) as c:
        assert {k for k, _ in c.list_keys()} == before
        assert c.decrypt(aes, sealed, b"hdr") == b"before restart"
        assert c.describe_key(aes).label == "telemetry"
        nonce = b"\x07" * 12
        assert c.decrypt(imported, nonce + AESGCM(AES_RAW).encrypt(nonce, b"x", None)) == b"x"
        sig = c.mldsa_sign(dsa.key_id, b"manifest")
        mldsa.MLDSA65PrivateKey.from_seed_bytes(MLDSA_SEED).public_key().verify(sig, b"manifest")
        assert c.export_public(dsa.key_id).public_key == dsa.public_key
        dec = c.mlkem_decaps(kem.key_id, enc.ciphertext)  # the persisted ML-KEM key derives the same AES key
        assert c.decrypt(dec.key_id, kem_sealed) == b"kem data"
        assert c.decrypt(enc.key_id, kem_sealed) == b"kem data"
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ecdsa.public_key)
        pub.verify(c.ecdsa_sign(ecdsa.key_id, b"tbs"), b"tbs", ec.ECDSA(hashes.SHA256()))


def test_aes_counters_continue_past_the_reservation(backend):
    """Crossing a COUNTER_BLOCK boundary persists a new reservation; a restart continues after it, and the
    invocation limit counts what was reserved before the restart."""
    svc = backend.service()
    svc.config["limits"] = {**svc.config["limits"], "gcm_invocation_limit": 3 * COUNTER_BLOCK + 2}
    with svc, Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        for _ in range(COUNTER_BLOCK + 5):
            c.encrypt(key, b"")
        assert c.describe_key(key).uses == COUNTER_BLOCK + 5
    with svc, Client(svc.socket) as c:
        assert c.describe_key(key).uses == 2 * COUNTER_BLOCK  # continues after everything reserved before
        sealed = c.encrypt(key, b"after")
        assert c.describe_key(key).uses == 2 * COUNTER_BLOCK + 1
        assert c.decrypt(key, sealed) == b"after"
    with svc, Client(svc.socket) as c:
        assert c.describe_key(key).uses == 3 * COUNTER_BLOCK
        c.encrypt(key, b"two more")
        c.encrypt(key, b"allowed")
        assert status_of(lambda: c.encrypt(key, b"limit")) == Status.KEY_EXHAUSTED


def test_deleted_keys_stay_deleted(backend):
    svc = backend.service()
    with svc, Client(svc.socket) as c:
        keep = c.generate_key(Algorithm.ML_DSA_44).key_id
        gone = c.generate_key(Algorithm.AES_256_GCM).key_id
        gone_kem = c.mlkem_keygen(Algorithm.ML_KEM_512).key_id
        c.delete_key(gone)
        c.delete_key(gone_kem)
        assert status_of(lambda: c.encrypt(gone, b"x")) == Status.KEY_NOT_FOUND
    assert [f.name for f in backend.key_files()] == [f"{keep:08x}.key"]
    with svc, Client(svc.socket) as c:
        assert [k for k, _ in c.list_keys()] == [keep]
        assert status_of(lambda: c.describe_key(gone)) == Status.KEY_NOT_FOUND
        assert status_of(lambda: c.mlkem_decaps(gone_kem, b"\0" * 768)) == Status.KEY_NOT_FOUND


def test_policy_is_enforced_after_restart(backend):
    svc = backend.service()
    with svc, Client(svc.socket) as c:
        enc_only = c.generate_key(Algorithm.AES_256_GCM, KeyUsage.ENCRYPT).key_id
        replay = c.generate_key(Algorithm.AES_256_GCM, KeyUsage.ENCRYPT | KeyUsage.DECRYPT
                                | KeyUsage.REPLAY_PROTECT).key_id
        verify_only = c.import_key(Algorithm.ML_DSA_65, KeyFormat.PUBLIC,
                                   mldsa.MLDSA65PrivateKey.from_seed_bytes(MLDSA_SEED).public_key()
                                   .public_bytes_raw()).key_id
        secret = c.generate_key(Algorithm.ML_DSA_65).key_id
        exportable = c.import_key(Algorithm.ML_DSA_65, KeyFormat.SEED, MLDSA_SEED,
                                  KeyUsage.SIGN | KeyUsage.VERIFY | KeyUsage.EXPORTABLE).key_id
    with svc, Client(svc.socket) as c:
        sealed = c.encrypt(enc_only, b"x")
        assert status_of(lambda: c.decrypt(enc_only, sealed)) == Status.PERMISSION_DENIED
        s = c.encrypt(replay, b"y")
        assert c.decrypt(replay, s) == b"y"
        assert status_of(lambda: c.decrypt(replay, s)) == Status.NONCE_REUSE
        assert status_of(lambda: c.mldsa_sign(verify_only, b"m")) == Status.PERMISSION_DENIED
        assert status_of(lambda: c.export_key(secret, KeyFormat.SEED)) == Status.PERMISSION_DENIED
        assert c.export_key(exportable, KeyFormat.SEED) == MLDSA_SEED
        assert c.describe_key(verify_only).usage == KeyUsage.VERIFY


def test_concurrent_clients(backend):
    """Several clients in threads create, use and delete keys at once; the store ends up exactly consistent."""
    svc = backend.service()
    shared_sealed, errors, created = {}, [], {}
    with svc:
        with Client(svc.socket) as c:
            shared = c.generate_key(Algorithm.AES_256_GCM).key_id

        def worker(n: int) -> None:
            try:
                with Client(svc.socket) as c:
                    mine = []
                    for i in range(6):
                        alg = (Algorithm.AES_256_GCM, Algorithm.ML_KEM_768, Algorithm.ECDSA_P256)[i % 3]
                        mine.append(c.generate_key(alg, label=f"t{n}-{i}").key_id)
                    c.delete_key(mine.pop(0))
                    for i in range(200):
                        shared_sealed[(n, i)] = c.encrypt(shared, b"%d/%d" % (n, i))
                    created[n] = mine
            except Exception as e:  # noqa: BLE001  reported by the main thread
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        with Client(svc.socket) as c:
            assert c.describe_key(shared).uses == 800
    expected = {shared} | {k for keys in created.values() for k in keys}
    with svc, Client(svc.socket) as c:
        assert {k for k, _ in c.list_keys()} == expected and len(expected) == 21
        assert c.describe_key(shared).uses == COUNTER_BLOCK
        for (n, i), sealed in list(shared_sealed.items())[::50]:
            assert c.decrypt(shared, sealed) == b"%d/%d" % (n, i)
        assert len({s[:12] for s in shared_sealed.values()}) == 800  # no nonce twice
