"""Abuse of the connection set-up and of the session: the service keeps admitting and serving others.

* Clients that connect and never send HELLO (or send half of one), many at once: the handshake of
  one connection must not hold up the next one (a local user could otherwise lock every other
  client out: 2 s per silent connection, in a row).
* Clients that fill every slot and never read the responses, ring the doorbell with nothing
  submitted, or write junk on the socket after HELLO.
* Clients killed with SIGKILL at random moments: during the handshake, with requests in flight,
  while idle.
Beside each, an honest client must get every result right; afterwards the service must be back
at its baseline of sessions and open file descriptors (nothing leaked).
"""
from __future__ import annotations

import os
import random
import signal
import socket

import subprocess
import sys
import textwrap
import time

from support.honest_client import HonestClient, service_fd_count, wait_for
from support.rawclient import HELLO, MAGIC, RawClient
from support.targets import ROOT
from wvds.client import Client
from wvds.protocol.constants import Algorithm, RequestType
from wvds.protocol.header import pack_request
from wvds.protocol.payloads import KeyGenerateRequest


def _sessions(svc) -> int:
    with Client(svc.socket) as c:
        return c.status()["clients"] - 1  # not counting this one


def test_silent_connections_do_not_block_others(start_service):
    svc = start_service()
    silent = []
    for i in range(8):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(svc.socket)
        if i % 2:
            s.send(HELLO.pack(MAGIC, 1, 0, 0)[:5])  # half a HELLO
        silent.append(s)
    t0 = time.monotonic()
    with Client(svc.socket, timeout_ms=20_000) as c:
        assert len(c.random(8)) == 8
    elapsed = time.monotonic() - t0
    for s in silent:
        s.close()
    assert elapsed < 1.9, f"a new client waited {elapsed:.1f} s behind silent connections (one HELLO wait is 2 s)"


def test_clients_that_never_read_or_ring_for_nothing(start_service):
    svc = start_service()
    honest = HonestClient(svc.socket)
    honest.start()
    assert honest.ready.wait(30)
    base_fds = service_fd_count(svc.proc.pid)
    hogs = []
    for i in range(6):
        r = RawClient(svc.socket)
        if i % 3 == 0:  # every slot submitted, nobody ever reads or frees them
            for slot in range(r.slots):
                r.submit(pack_request(RequestType.KEY_GENERATE, KeyGenerateRequest(Algorithm.ML_DSA_44).encode()),
                         slot)
        elif i % 3 == 1:  # doorbell rung with nothing submitted
            for _ in range(2000):
                os.eventfd_write(r.doorbell, 1)
        else:  # junk on the socket after the handshake
            r.sock.send(b"\xff" * 64)
        hogs.append(r)
    time.sleep(1.0)
    for _ in range(500):  # keep ringing while the honest client works
        os.eventfd_write(hogs[1].doorbell, 1)
    honest.stop()
    honest.check()
    for r in hogs:
        r.close()
    wait_for(lambda: _sessions(svc) == 0, 10, "hog sessions to end")
    wait_for(lambda: service_fd_count(svc.proc.pid) <= base_fds - 2, 10, "descriptors to be released")


DIER = textwrap.dedent("""
    import os, socket, sys, time
    sys.path[:0] = [{tests!r}, {src!r}]
    from support.rawclient import RawClient, HELLO, MAGIC
    from wvds.protocol.header import pack_request
    from wvds.protocol.payloads import KeyGenerateRequest, RandomRequest
    from wvds.protocol.constants import Algorithm, RequestType
    mode = sys.argv[2]
    if mode == "handshake":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1])
    else:
        r = RawClient(sys.argv[1])
        if mode == "busy":
            for slot in range(r.slots):
                r.submit(pack_request(RequestType.KEY_GENERATE, KeyGenerateRequest(Algorithm.ML_DSA_87).encode()), slot)
        else:
            r.submit(pack_request(RequestType.RANDOM, RandomRequest(64).encode()))
    print("ready", flush=True)
    time.sleep(60)
""")


def test_clients_killed_at_random_moments(start_service, tmp_path):
    svc = start_service()
    script = tmp_path / "dier.py"
    script.write_text(DIER.format(tests=str(ROOT / "tests"), src=str(ROOT / "src")))
    honest = HonestClient(svc.socket)
    honest.start()
    assert honest.ready.wait(30)
    base_fds = service_fd_count(svc.proc.pid)
    rnd = random.Random(7)
    for i in range(12):
        mode = ("handshake", "busy", "idle")[i % 3]
        proc = subprocess.Popen([sys.executable, str(script), svc.socket, mode], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rnd.uniform(0, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    honest.stop()
    honest.check()
    wait_for(lambda: _sessions(svc) == 0, 15, "sessions of killed clients to end")
    wait_for(lambda: service_fd_count(svc.proc.pid) <= base_fds - 2, 15, "descriptors to be released")

