"""Isolation: clients see only their own (or granted) keys, unlisted uids are refused
before anything is shared, and a client dying mid-request leaves the service healthy."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from support.rawclient import RawClient, Refused
from support.service import clib_path
from support.targets import HOST, ROOT
from wvds.client import Client
from wvds.protocol.constants import Algorithm, Status

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root (CI runs as root)")


@pytest.fixture
def shared_dir():
    """A directory another uid can reach, holding a copy of the client code and library."""
    d = Path(tempfile.mkdtemp(prefix="wvds-iso-"))
    d.chmod(0o755)
    shutil.copytree(ROOT / "src" / "wvds", d / "wvds", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(clib_path(HOST), d / "libclient.so")
    for p in d.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_as(uid: int, shared: Path, socket: str, code: str, extra_groups: tuple[int, ...] = ()) -> dict:
    """Run a client snippet as `uid` (primary group = uid, plus extra_groups) with Debian's python3;
    it prints a JSON result."""
    env = {"PYTHONPATH": str(shared), "WVDS_CLIENT_LIB": str(shared / "libclient.so"), "SOCK": socket,
           "PATH": "/usr/bin:/bin"}
    prog = "import json, os\nfrom wvds.client import Client, ServiceStatusError, TransportFailure\n" \
           "from wvds.protocol.constants import *\nfrom wvds.protocol.payloads import KeyRef\n" + textwrap.dedent(code)
    r = subprocess.run(["/usr/bin/python3", "-c", prog], env=env, user=uid, group=uid,
                       extra_groups=list(extra_groups), capture_output=True,
                       text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


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
