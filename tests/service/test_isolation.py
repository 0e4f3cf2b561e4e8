"""Isolation: clients see only their own (or granted) keys, unlisted uids are refused
before anything is shared, and a client dying mid-request leaves the service healthy."""
import os
import signal
import subprocess
import textwrap
import time

import pytest

from support.other_uid import NOBODY, needs_root, run_as
from support.rawclient import RawClient, Refused
from support.targets import ROOT
from wvds.client import Client
from wvds.protocol.constants import Algorithm, KeyUsage, Status

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()


@needs_root
def test_other_uid_cannot_see_or_use_my_keys(make_service, shared_dir):
    sock = str(shared_dir / "crypto.sock")
    svc = make_service(socket={"path": sock, "mode": "0666"}, access={"allow_uids": [0, NOBODY]},
                       grants=[{"owner_uid": 0, "label": "shared-verify", "uids": [NOBODY], "usage": ["verify"]}])
    with Client(svc.socket) as c:
        private = c.generate_key(Algorithm.AES_256_GCM, label="mine").key_id
        shared = c.generate_key(Algorithm.ML_DSA_44, label="shared-verify")
        sig = c.mldsa_sign(shared.key_id, b"msg")
    out = run_as(NOBODY, shared_dir, sock, f"""
        c = Client(os.environ["SOCK"])
        res = {{}}
        for name, fn in [("encrypt", lambda: c.encrypt({private}, b"x")),
                         ("describe", lambda: c.describe_key({private})),
                         ("delete", lambda: c.delete_key({private})),
                         ("sign_granted", lambda: c.mldsa_sign({shared.key_id}, b"x")),
                         ("delete_granted", lambda: c.delete_key({shared.key_id}))]:
            try:
                fn(); res[name] = "SUCCESS"
            except ServiceStatusError as e:
                res[name] = e.status.name
        res["verify_granted"] = c.mldsa_verify({shared.key_id}, b"msg", bytes.fromhex("{sig.hex()}"))
        res["listed"] = [hex(k) for k, _ in c.list_keys()]
        print(json.dumps(res))
    """)
    assert out["encrypt"] == out["describe"] == out["delete"] == "KEY_NOT_FOUND"
    assert out["sign_granted"] == "PERMISSION_DENIED"  # the grant gives verify only
    assert out["delete_granted"] == "PERMISSION_DENIED"  # only the owner deletes
    assert out["verify_granted"] is True
    assert out["listed"] == [hex(shared.key_id)]
    with Client(svc.socket) as c:  # the owner still has everything
        assert c.describe_key(private).label == "mine"


@needs_root
def test_unlisted_uid_is_refused_before_sharing(make_service, shared_dir):
    sock = str(shared_dir / "crypto.sock")
    make_service(socket={"path": sock, "mode": "0666"}, access={"allow_uids": [0]})
    out = run_as(NOBODY, shared_dir, sock, """
        try:
            Client(os.environ["SOCK"]); print(json.dumps({"result": "connected"}))
        except TransportFailure as e:
            print(json.dumps({"result": e.name}))
    """)
    assert out["result"] == "ERR_REFUSED"


def test_refusal_carries_a_status_and_no_descriptors(make_service):
    svc = make_service(access={"allow_uids": [12345]})
    with pytest.raises(Refused) as e:
        RawClient(svc.socket)
    assert e.value.status == Status.PERMISSION_DENIED


def test_max_clients(make_service):
    svc = make_service(limits={"max_clients": 1})
    with RawClient(svc.socket):
        with pytest.raises(Refused) as e:
            RawClient(svc.socket)
        assert e.value.status == Status.QUOTA_EXCEEDED


def test_client_dying_mid_request_leaves_the_service_healthy(service, tmp_path):
    script = tmp_path / "dier.py"
    script.write_text(textwrap.dedent(f"""
        import sys; sys.path[:0] = {[str(ROOT / 'tests'), str(ROOT / 'src')]!r}
        from support.rawclient import RawClient
        from wvds.protocol.header import pack_request
        from wvds.protocol.payloads import KeyGenerateRequest
        from wvds.protocol.constants import Algorithm, RequestType
        r = RawClient({service.socket!r})
        for slot in range(r.slots):
            r.submit(pack_request(RequestType.KEY_GENERATE, KeyGenerateRequest(Algorithm.ML_DSA_87).encode()), slot)
        print("submitted", flush=True)
        import time; time.sleep(60)
    """))
    for _ in range(3):
        p = subprocess.Popen([os.sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "submitted"
        p.send_signal(signal.SIGKILL)
        p.wait()
    with Client(service.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        assert c.decrypt(key, c.encrypt(key, b"still here")) == b"still here"
    deadline = time.monotonic() + 10
    while "client disconnected" not in service.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "client disconnected" in service.log()


def test_sigterm_is_a_clean_shutdown(make_service):
    svc = make_service()
    with Client(svc.socket) as c:
        c.random(1)
        assert svc.stop() == 0
    assert not os.path.exists(svc.socket)
    assert "crypto_service stopped" in svc.log()


@needs_root
def test_grantee_gets_a_shared_secret_only_with_its_own_release_right(make_service, shared_dir):
    """RELEASE_SECRET on the key is the owner's right; a grantee needs it in its grant too."""
    sock = str(shared_dir / "crypto.sock")
    svc = make_service(socket={"path": sock, "mode": "0666"}, access={"allow_uids": [0, NOBODY]},
                       grants=[{"owner_uid": 0, "label": "kem-decaps", "uids": [NOBODY], "usage": ["decaps"]},
                               {"owner_uid": 0, "label": "kem-release", "uids": [NOBODY],
                                "usage": ["decaps", "encaps", "release_secret"]}])
    usage = KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET
    with Client(svc.socket) as c:
        bare = c.mlkem_keygen(Algorithm.ML_KEM_768, usage, label="kem-decaps").key_id
        full = c.mlkem_keygen(Algorithm.ML_KEM_768, usage, label="kem-release").key_id
        to_bare = c.mlkem_encaps(bare, return_secret=True)
        to_full = c.mlkem_encaps(full, return_secret=True)
    out = run_as(NOBODY, shared_dir, sock, f"""
        c = Client(os.environ["SOCK"])
        res = {{}}
        for name, fn in [
                ("decaps_release", lambda: c.mlkem_decaps({bare}, bytes.fromhex("{to_bare.ciphertext.hex()}"), True)),
                ("encaps_release", lambda: c.mlkem_encaps({bare}, True)),
                ("decaps_to_key", lambda: c.mlkem_decaps({bare}, bytes.fromhex("{to_bare.ciphertext.hex()}"))),
                ("granted_release", lambda: c.mlkem_decaps({full}, bytes.fromhex("{to_full.ciphertext.hex()}"),
                                                           True))]:
            try:
                r = fn()
                res[name] = getattr(r, "secret", b"").hex() or "SUCCESS"
            except ServiceStatusError as e:
                res[name] = e.status.name
        print(json.dumps(res))
    """)
    assert out["decaps_release"] == "PERMISSION_DENIED", out  # the version before released the secret
    assert out["encaps_release"] == "PERMISSION_DENIED", out  # no encaps in that grant at all
    assert out["decaps_to_key"] == "SUCCESS", out  # the secret stays inside, as a new AES key of the grantee
    assert out["granted_release"] == to_full.secret.hex(), out
