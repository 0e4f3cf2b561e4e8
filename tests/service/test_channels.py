"""Configured channels (crypto_service/channels.py): request frames over a byte-stream port, as the L4Re
gateway sends them over its virtio console port into the VM (docs/l4re.md). Here the port is a
pseudo-terminal: the service opens its slave end by path, the test is the peer on the master end and
writes frames the way a foreign implementation or an attacker would, byte by byte where it matters.
Runs against the sources and each architecture's binaries (aarch64 under qemu-user)."""
from __future__ import annotations

import os
import random
import select
import struct
import threading
import time
import tty

import pytest

from support.service import ServiceProcess, base_config, status_of
from support.targets import HOST
from wvds.protocol.constants import (HEADER_SIZE, MAX_PAYLOAD, PROTOCOL_VERSION, REQUEST_MAGIC, Algorithm,
                                     RequestType, Status)
from wvds.protocol.header import pack_request, parse_response
from wvds.protocol.payloads import (AesDecryptRequest, AesEncryptRequest, KeyCreatedResponse, KeyGenerateRequest,
                                    KeyIdRequest, RandomRequest)

pytestmark = pytest.mark.binaries()
CHANNEL_UID = 4242  # not the test's uid: what the channel does, it does as this identity


class Peer:
    """The other end of the channel: the pty's master."""

    def __init__(self, timeout: float):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # before the service opens it: no byte may meet a cooked line discipline
        self.path = os.ttyname(self.slave)
        self.timeout = timeout

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view):]

    def receive(self, n: int) -> bytes:
        out, deadline = b"", time.monotonic() + self.timeout
        while len(out) < n:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"{len(out)} of {n} bytes within {self.timeout} s")
            out += os.read(self.master, n - len(out))
        return out

    def response(self) -> tuple[Status, bytes]:
        header = self.receive(HEADER_SIZE)
        return parse_response(header + self.receive(struct.unpack_from("<I", header, 4)[0]))

    def call(self, rtype: RequestType, payload: bytes = b"") -> tuple[Status, bytes]:
        self.send(pack_request(rtype, payload))
        return self.response()

    def quiet(self, seconds: float = 0.3) -> bool:
        return not select.select([self.master], [], [], seconds)[0]

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(scope="module")
def peer(programs):
    p = Peer(timeout=30 if programs.target.native else 240)
    yield p
    p.close()


def channel_config(workdir, path: str, **overrides) -> dict:
    return base_config(workdir, access={"allow_uids": [os.getuid(), CHANNEL_UID]},
                       channels=[{"name": "gw", "path": path, "uid": CHANNEL_UID, "gid": CHANNEL_UID}], **overrides)


def wait_open(client, name: str = "gw", timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        ch = {c["name"]: c for c in client.status()["channels"]}[name]
        if ch["state"] == "open" or time.monotonic() > deadline:
            return ch
        time.sleep(0.05)


@pytest.fixture(scope="module")
def service(programs, fips_env, tmp_path_factory, peer):
    workdir = tmp_path_factory.mktemp("svc")
    with ServiceProcess(HOST, fips_env, workdir, channel_config(workdir, peer.path), programs=programs) as svc:
        yield svc


def test_requests_over_the_channel(service, client, peer):
    ch = wait_open(client)
    assert ch["state"] == "open" and ch["uid"] == CHANNEL_UID and ch["path"] == peer.path, ch
    status, data = peer.call(RequestType.RANDOM, RandomRequest(16).encode())
    assert status == Status.SUCCESS and len(data) == 16
    status, data = peer.call(RequestType.KEY_GENERATE, KeyGenerateRequest(Algorithm.AES_256_GCM, label="gw").encode())
    assert status == Status.SUCCESS
    key = KeyCreatedResponse.decode(data).key_id
    plain = os.urandom(60_000)  # many times the pty's buffer, both ways
    status, sealed = peer.call(RequestType.AES_ENCRYPT, AesEncryptRequest(key, b"hdr", plain).encode())
    assert status == Status.SUCCESS and len(sealed) == len(plain) + 28
    decrypt = AesDecryptRequest(key, b"hdr", sealed).encode()
    assert peer.call(RequestType.AES_DECRYPT, decrypt) == (Status.SUCCESS, plain)
    assert peer.call(RequestType.AES_DECRYPT, decrypt)[0] == Status.NONCE_REUSE  # replay protection holds here too
    # the key belongs to the channel's identity: a socket client of another uid does not even see it
    assert status_of(client.describe_key, key) == Status.KEY_NOT_FOUND
    assert status_of(client.encrypt, key, b"x") == Status.KEY_NOT_FOUND
    # ...nor does the channel see the socket client's keys
    mine = client.generate_key(Algorithm.AES_256_GCM, label="socket").key_id
    assert peer.call(RequestType.KEY_DESCRIBE, KeyIdRequest(mine).encode())[0] == Status.KEY_NOT_FOUND
    assert peer.call(RequestType.KEY_DELETE, KeyIdRequest(key).encode()) == (Status.SUCCESS, b"")
    ch = wait_open(client)
    assert ch["requests"] == 7 and ch["framing_errors"] == 0, ch


@pytest.mark.parametrize("frame,status", [
    (bytes([0x01, 0x01, 0x38, 0x00]) + struct.pack("<I", 4) + struct.pack("<I", 16), Status.INVALID_HEADER),  # magic
    (bytes([REQUEST_MAGIC, 0x09, 0x38, 0x00]) + struct.pack("<I", 4), Status.INVALID_HEADER),  # version
    (bytes([REQUEST_MAGIC, PROTOCOL_VERSION, 0x38, 0x00]) + struct.pack("<I", MAX_PAYLOAD + 1),
     Status.PAYLOAD_TOO_LARGE),
    (b"GET / HTTP/1.0\r\n\r\n" * 50, Status.INVALID_HEADER),
], ids=["magic", "version", "too-large", "text"])
def test_a_header_that_loses_the_framing_is_answered_and_the_channel_resyncs(service, client, peer, frame, status):
    wait_open(client)
    before = wait_open(client)["framing_errors"]
    peer.send(frame)
    assert peer.response() == (status, b"")
    assert peer.quiet(), "one answer per lost framing, not one per byte"
    # the answer came once the port was quiet (the rest of the bad frame dropped): the next frame is kept
    status, data = peer.call(RequestType.RANDOM, RandomRequest(8).encode())
    assert status == Status.SUCCESS and len(data) == 8
    assert wait_open(client)["framing_errors"] == before + 1


def test_random_bytes_do_not_hurt(service, client, peer):
    """200 KB of noise (a header's first bytes among it now and then): answered with framing errors only,
    the service keeps serving the socket and the channel, and the next frame after the noise is served."""
    rng = random.Random(21)
    noise = bytearray(rng.randbytes(200_000))
    for at in range(0, len(noise), 5000):  # plausible starts, so some "frames" get as far as their payload
        noise[at:at + 2] = bytes([REQUEST_MAGIC, PROTOCOL_VERSION])
    peer.send(bytes(noise))
    answers = []
    while not peer.quiet(1.0):
        answers.append(peer.response()[0])
    assert answers and set(answers) <= {Status.INVALID_HEADER, Status.PAYLOAD_TOO_LARGE, Status.INVALID_PAYLOAD,
                                        Status.INVALID_TYPE}, answers
    assert len(client.random(4)) == 4
    status, data = peer.call(RequestType.RANDOM, RandomRequest(8).encode())
    assert status == Status.SUCCESS and len(data) == 8


def test_framing_survives_what_the_dispatcher_refuses(service, client, peer):
    """Well-framed requests the dispatcher refuses (unknown type, reserved flags, a bad payload) are answered
    one by one, back to back, with no resync in between."""
    bad_type = bytes([REQUEST_MAGIC, PROTOCOL_VERSION, 0x7E, 0x00]) + struct.pack("<I", 3) + b"abc"
    bad_flags = bytes([REQUEST_MAGIC, PROTOCOL_VERSION, 0x38, 0x80]) + struct.pack("<I", 4) + struct.pack("<I", 16)
    bad_payload = pack_request(RequestType.RANDOM, b"\x01")
    good = pack_request(RequestType.RANDOM, RandomRequest(4).encode())
    peer.send(bad_type + bad_flags + bad_payload + good)
    assert [peer.response()[0] for _ in range(4)] == [Status.INVALID_TYPE, Status.INVALID_HEADER,
                                                      Status.INVALID_PAYLOAD, Status.SUCCESS]


def test_a_frame_sent_byte_by_byte_is_one_request(service, client, peer):
    wait_open(client)
    for b in pack_request(RequestType.RANDOM, RandomRequest(32).encode()):
        peer.send(bytes([b]))
        time.sleep(0.01)
    status, data = peer.response()
    assert status == Status.SUCCESS and len(data) == 32


def test_an_incomplete_frame_is_answered_after_the_frame_timeout(service, client, peer):
    wait_open(client)
    before = wait_open(client)["framing_errors"]
    peer.send(pack_request(RequestType.RANDOM, RandomRequest(16).encode())[:HEADER_SIZE + 2])
    started = time.monotonic()
    assert peer.response() == (Status.INVALID_PAYLOAD, b"")
    assert time.monotonic() - started >= 4  # stream_port.FRAME_S: 5 s from the header
    status, _ = peer.call(RequestType.RANDOM, RandomRequest(1).encode())
    assert status == Status.SUCCESS and wait_open(client)["framing_errors"] == before + 1


def test_the_rate_limit_of_the_channel_identity(programs, fips_env, tmp_path):
    p = Peer(timeout=30 if programs.target.native else 240)
    try:
        cfg = channel_config(tmp_path, p.path, limits={"rate_limit": {"requests_per_second": 0.001, "burst": 3,
                                                                      "cooldown_ms": 60_000}})
        with ServiceProcess(HOST, fips_env, tmp_path, cfg, programs=programs) as svc:
            from wvds.client import Client
            with Client(svc.socket, timeout_ms=240_000) as c:
                wait_open(c, timeout=240)
            got = [p.call(RequestType.RANDOM, RandomRequest(4).encode())[0] for _ in range(6)]
            assert got[:3] == [Status.SUCCESS] * 3 and set(got[3:]) == {Status.RATE_LIMITED}, got
    finally:
        p.close()


def test_peer_gone_and_stop(programs, fips_env, tmp_path):
    """The peer hangs up: the service closes the port, keeps serving its socket, tries to reopen, and stops
    promptly on SIGTERM."""
    p = Peer(timeout=30 if programs.target.native else 240)
    with ServiceProcess(HOST, fips_env, tmp_path, channel_config(tmp_path, p.path), programs=programs) as svc:
        from wvds.client import Client
        with Client(svc.socket, timeout_ms=240_000) as c:
            assert wait_open(c, timeout=240)["state"] == "open"
            p.close()
            deadline = time.monotonic() + 30
            while wait_open(c, timeout=0)["state"] != "waiting" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert wait_open(c, timeout=0)["state"] == "waiting"  # closed, and the path is gone with the pty
            assert len(c.random(8)) == 8
        started = time.monotonic()
        assert svc.stop() == 0
        assert time.monotonic() - started < 10
    assert "channel closed by its peer" in svc.log() and "channel not open" in svc.log()


def test_a_noisy_peer_neither_holds_the_shutdown_up_nor_fills_the_log(programs, fips_env, tmp_path):
    """A peer that keeps sending garbage: the channel thread sees the stop while it drops the noise (it used to
    run on past stop()'s 5 s join), and framing errors are logged at most every 10 s (STATUS counts them all)."""
    p = Peer(timeout=30 if programs.target.native else 240)
    stop = threading.Event()

    def noise():
        rng = random.Random(5)
        while not stop.is_set():
            try:
                p.send(rng.randbytes(64))
            except OSError:
                return
            time.sleep(0.02)

    t = threading.Thread(target=noise)
    try:
        with ServiceProcess(HOST, fips_env, tmp_path, channel_config(tmp_path, p.path), programs=programs) as svc:
            from wvds.client import Client
            with Client(svc.socket, timeout_ms=240_000) as c:
                wait_open(c, timeout=240)
                t.start()
                deadline = time.monotonic() + 60
                while wait_open(c, timeout=0)["framing_errors"] < 3 and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert wait_open(c, timeout=0)["framing_errors"] >= 3
            started = time.monotonic()
            assert svc.stop() == 0
            stopped_in = time.monotonic() - started
        if programs.target.native:
            assert stopped_in < 4, f"stopped in {stopped_in:.1f} s"
        refused = [ln for ln in svc.log().splitlines() if "channel frame refused" in ln]
        assert 1 <= len(refused) <= 2, refused
    finally:
        stop.set()
        if t.is_alive():
            t.join()
        p.close()


def test_a_port_without_its_other_end_is_logged_once(programs, fips_env, tmp_path):
    """A port that answers end of file at once (a virtio port whose device side is not there; here
    /dev/null) is reopened every second, and says so once, not twice a second."""
    cfg = channel_config(tmp_path, "/dev/null", log={"level": "info"})
    with ServiceProcess(HOST, fips_env, tmp_path, cfg, programs=programs) as svc:
        from wvds.client import Client
        with Client(svc.socket, timeout_ms=240_000) as c:
            deadline = time.monotonic() + 60
            while wait_open(c, timeout=0)["opened"] < 4 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert wait_open(c, timeout=0)["opened"] >= 4
    lines = [ln for ln in svc.log().splitlines() if '"wvds.channel"' in ln]
    assert len(lines) == 2 and "channel open" in lines[0] and "end of file" in lines[1], lines


def test_channels_config_is_checked(tmp_path):
    from wvds.crypto_service import config
    from wvds.crypto_service.errors import ConfigError
    ok = {"access": {"allow_gids": [7]}, "channels": [{"path": "/dev/virtio-ports/wvds.gateway", "uid": 9,
                                                        "gid": 7}]}
    spec = config.parse(ok).channels[0]
    assert (spec.name, spec.path, spec.uid, spec.gid) == ("wvds.gateway", "/dev/virtio-ports/wvds.gateway", 9, 7)
    for channels, message in [
        ([{"path": "/dev/p", "uid": 9, "gid": 8}], "channels[0]: uid 9 and gid 8 are in neither"),
        ([{"path": "dev/p", "uid": 9, "gid": 7}], "channels[0].path: must be an absolute path"),
        ([{"path": "/dev/p", "gid": 7}], "channels[0].uid: required"),
        ([{"path": "/dev/p", "uid": 9, "gid": 7, "peer": 1}], "channels[0].peer: unknown field"),
        ([{"path": "/dev/p", "uid": 9, "gid": 7}] * 2, "channels[1].path: /dev/p is already channels[0]"),
        ([{"path": "/dev/p", "uid": 9, "gid": 7, "name": "a\nb"}], "channels[0].name: must be 1..32 printable"),
    ]:
        with pytest.raises(ConfigError) as e:
            config.parse({**ok, "channels": channels}, "c.json")
        assert f"c.json: {message}" in str(e.value), str(e.value)
