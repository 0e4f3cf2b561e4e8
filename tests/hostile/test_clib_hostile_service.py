"""The C client library against a service that lies: randomized malformed responses never crash it.

tests/support/fake_service.py answers every request correctly (toy cryptography, real transport).
HostileService below takes each correct response and, for most requests, breaks it with a seeded
generator: truncated or extended payloads with or without a matching header length, a header
length that lies, bad magic/version/flags, unknown or mismatched statuses, length fields inside the
payload set to extremes, random bytes of random size up to the whole response area, and a resp_len
word that lies (0, shorter than a header, past the response area). It writes the response and
the slot state itself, so nothing on the service side filters the lies.

clib_fuzz_client.c (compiled here with the library sources and -fsanitize=address,undefined, every
output buffer exactly as large as declared) calls every library function thousands of times and
checks that each returns a known status and reports no length beyond its buffer. Any overflow,
undefined behaviour, crash or hang fails the test.
"""
from __future__ import annotations

import ctypes
import random
import struct
import subprocess
from collections import Counter

from support.clib import SERVICE_LIB, compile_c, library_includes, library_sources
from support.targets import BUILD, HOST, ROOT

from support.fake_service import FakeService
from wvds.protocol.constants import Status
from wvds.protocol.header import pack_response

ITERATIONS = 4000
SLOTS_OFFSET, SLOT_SIZE, RESP_OFF, RESP_AREA = 4096, 135168, 65608, 65800
STATE_DONE = 3
_libc = ctypes.CDLL(None, use_errno=True)
SYS_FUTEX, FUTEX_WAKE = 202, 1  # x86_64


class HostileService(FakeService):
    """FakeService whose responses are broken on purpose (most of the time)."""

    def __init__(self, lib_path: str, path: str, seed: int):
        super().__init__(lib_path, path)
        self.rnd = random.Random(seed)
        self.mutations: Counter = Counter()

    def _answer(self, base: int, slots: int, slot: int, frame: bytes) -> None:
        try:
            status, out = self.answer(frame)
        except (KeyError, ValueError):  # the toy crypto has no answer for this key/algorithm mix
            status, out = Status.UNSUPPORTED_ALGORITHM, b""
        with self._lock:  # one generator, many service threads
            kind, response, resp_len = self._break(pack_response(status, out))
            self.mutations[kind] += 1
        slot_addr = base + SLOTS_OFFSET + slot * SLOT_SIZE
        ctypes.memmove(slot_addr + RESP_OFF, response, len(response))
        ctypes.c_uint32.from_address(slot_addr + 8).value = resp_len
        ctypes.c_uint32.from_address(slot_addr).value = STATE_DONE  # x86-64: stores are not reordered
        _libc.syscall(SYS_FUTEX, ctypes.c_void_p(slot_addr), FUTEX_WAKE, 0x7FFFFFFF, None, None, 0)

    def _break(self, good: bytes) -> tuple[str, bytes, int]:
        r = self.rnd
        b = bytearray(good)
        kind = r.choice(["none", "none", "truncate", "truncate-keep-length", "extend", "extend-keep-length",
                         "header-length", "header-bytes", "status", "flip", "embedded-length", "random",
                         "resp-len"])
        if kind == "truncate" and len(b) > 8:
            del b[r.randrange(8, len(b)):]
            struct.pack_into("<I", b, 4, len(b) - 8)
        elif kind == "truncate-keep-length":
            del b[r.randrange(0, len(b)):]
        elif kind in ("extend", "extend-keep-length"):
            b += r.randbytes(r.choice([1, 2, 4, 100, r.randrange(1, 4000)]))
            del b[RESP_AREA:]
            if kind == "extend":
                struct.pack_into("<I", b, 4, len(b) - 8)
        elif kind == "header-length":
            struct.pack_into("<I", b, 4, r.choice([0, 1, len(b) - 9, len(b) - 7, 65792, 65793, 0xFFFFFFFF,
                                                   r.randrange(1 << 32)]) & 0xFFFFFFFF)
        elif kind == "header-bytes":
            b[r.randrange(4) if r.random() < 0.7 else 0] = r.randrange(256)
        elif kind == "status":
            b[2] = r.choice([0, 0x05, 0x0B, 0x11, 0x12, 0x7F, 0xFF])
        elif kind == "flip" and len(b) > 8:
            for _ in range(r.randint(1, 8)):
                b[r.randrange(8, len(b))] ^= 1 << r.randrange(8)
        elif kind == "embedded-length" and len(b) > 10:
            at = r.randrange(8, len(b) - 1)
            b[at:at + 2] = r.choice([b"\xff\xff", b"\x00\x00", b"\xff\x00", b"\x00\x10"])
        elif kind == "random":
            b = bytearray(b"\xc8\x01" + r.randbytes(r.choice([0, 6, 30, 200, r.randrange(RESP_AREA - 2)])))
            if len(b) >= 8 and r.random() < 0.5:
                struct.pack_into("<I", b, 4, len(b) - 8)
        resp_len = len(b)
        if kind == "resp-len":
            resp_len = r.choice([0, 3, 7, len(b) + 1, RESP_AREA, RESP_AREA + 1, 0xFFFFFFFF])
        return kind, bytes(b), resp_len


def test_client_library_survives_a_lying_service(tmp_path):
    program = compile_c(HOST_ARCH, library_sources() + [ROOT / "tests" / "hostile" / "clib_fuzz_client.c"],
                        tmp_path / "clib_fuzz_client",
                        [*library_includes(HOST_ARCH), "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                         "-fno-omit-frame-pointer"])
    for seed in (1, 2):
        service = HostileService(str(BUILD / HOST.arch / "clib" / SERVICE_LIB), str(tmp_path / f"h{seed}.sock"), seed)
        try:
            r = subprocess.run([str(program), service.path, str(ITERATIONS), str(seed)], capture_output=True,
                               text=True, timeout=120)
        finally:
            service.close()
        out = r.stdout + r.stderr
        assert r.returncode == 0 and r.stdout.startswith("PASS"), f"seed {seed}:\n{out[-8000:]}"
        broken = sum(v for k, v in service.mutations.items() if k != "none")
        assert broken > ITERATIONS // 2, service.mutations
        assert "WVDS_ERR_PROTOCOL" in r.stdout and "WVDS_SUCCESS" in r.stdout, r.stdout
        print(f"seed {seed}: {r.stdout.strip()}; responses broken: {dict(service.mutations)}")


HOST_ARCH = HOST.arch
