"""Another uid guessing key ids gets nothing, and cannot even tell a real id from a random one.

The owner (root) creates one key of every kind. A process running as uid 65534, admitted by the
access list but granted nothing, then tries every key-id operation on the owner's real ids (as if
it had guessed them all) and on 100 random ids. Every attempt must answer KEY_NOT_FOUND: the
answers for real ids are exactly those for random ids (no PERMISSION_DENIED, no timing-free
oracle in the status), KEY_LIST shows nothing, and the owner's keys are untouched afterwards
(none deleted, no AES invocation counted). Needs root to switch uid (tests/support/other_uid.py).
"""
from __future__ import annotations

import json

from support.other_uid import NOBODY, needs_root, run_as
from wvds.client import Client
from wvds.protocol.constants import Algorithm

GUESSER = """
import random, struct
from wvds.protocol.header import pack_request
from wvds.protocol.payloads import KeyRef
from wvds.protocol import payloads as p
real = REAL_IDS
rnd = random.Random(1)
ids = {"real": real, "random": [rnd.randrange(1, 1 << 32) for _ in range(100)]}
ops = {
    "encrypt": lambda k: (RequestType.AES_ENCRYPT, p.AesEncryptRequest(k, b"", b"x").encode()),
    "decrypt": lambda k: (RequestType.AES_DECRYPT, p.AesDecryptRequest(k, b"", b"\\0" * 40).encode()),
    "mldsa_sign": lambda k: (RequestType.MLDSA_SIGN, p.MldsaSignRequest(k, b"m").encode()),
    "mldsa_verify": lambda k: (RequestType.MLDSA_VERIFY, p.MldsaVerifyRequest(KeyRef(k), b"m", b"s" * 2420).encode()),
    "ecdsa_sign": lambda k: (RequestType.ECDSA_SIGN, p.EcdsaSignRequest(k, b"d").encode()),
    "ecdsa_verify": lambda k: (RequestType.ECDSA_VERIFY, p.EcdsaVerifyRequest(KeyRef(k), b"d", b"\\x30\\x00").encode()),
    "encaps": lambda k: (RequestType.MLKEM_ENCAPS, p.MlkemEncapsRequest(KeyRef(k), 1).encode()),
    "decaps": lambda k: (RequestType.MLKEM_DECAPS, p.MlkemDecapsRequest(k, b"\\0" * 1088, 1).encode()),
    "export_public": lambda k: (RequestType.KEY_EXPORT_PUBLIC, p.KeyIdRequest(k).encode()),
    "export": lambda k: (RequestType.KEY_EXPORT, p.KeyExportRequest(k, KeyFormat.SEED).encode()),
    "describe": lambda k: (RequestType.KEY_DESCRIBE, p.KeyIdRequest(k).encode()),
    "delete": lambda k: (RequestType.KEY_DELETE, p.KeyIdRequest(k).encode()),
}
c = Client(os.environ["SOCK"])
res = {kind: {} for kind in ids}
for kind, keys in ids.items():
    for name, make in ops.items():
        for k in keys:
            status, payload = c.transact(*make(k))
            res[kind].setdefault(name, {}).setdefault(status.name, 0)
            res[kind][name][status.name] += 1
res["listed"] = len(c.list_keys())
print(json.dumps(res))
"""


@needs_root
def test_guessed_key_ids_get_nothing(start_service, shared_dir):
    sock = str(shared_dir / "crypto.sock")
    svc = start_service(socket={"path": sock, "mode": "0666"}, access={"allow_uids": [0, NOBODY]})
    with Client(svc.socket) as c:
        keys = {a: c.generate_key(a, label="owner").key_id for a in Algorithm}
        aes = keys[Algorithm.AES_256_GCM]
        c.encrypt(aes, b"one")
    out = run_as(NOBODY, shared_dir, sock, f"REAL_IDS = {json.dumps(list(keys.values()))}\n" + GUESSER)
    assert out["listed"] == 0
    for kind in ("real", "random"):
        for op, statuses in out[kind].items():
            assert set(statuses) == {"KEY_NOT_FOUND"}, (kind, op, statuses)
    with Client(svc.socket) as c:
        assert sorted(k for k, _ in c.list_keys()) == sorted(keys.values())
        assert c.describe_key(aes).uses == 1  # the guesser's encrypt attempts counted nothing
