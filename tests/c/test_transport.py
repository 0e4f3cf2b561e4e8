"""The slot protocol of docs/transport.md and the client library, both sides in C.

tests/c/transport/ is one program that forks: the parent serves with the wvds_srv_* functions
over a real listening socket, memfd and eventfd; the child is a client using the library. It
covers concurrent slots from many threads, timeouts and slot reclaim, a dead peer on either side,
req_len beyond the request area, malformed handshakes and responses (WVDS_ERR_PROTOCOL), argument
checks and the stream format. Built with sanitizers natively, plain for aarch64 under qemu-user.
"""
from support.clib import build_variants, compile_c, library_includes, library_sources
from support.targets import ROOT

TEST_SRC = ROOT / "tests" / "c" / "transport"



def test_slot_protocol_between_two_processes(arch, runner, tmp_path):
    for name, flags in build_variants(arch).items():
        program = compile_c(arch, library_sources() + sorted(TEST_SRC.glob("*.c")),
                            tmp_path / f"transport_test-{name}", [*library_includes(arch), f"-I{TEST_SRC}", "-g", *flags])
        r = runner.run(program, str(tmp_path / f"{name}.sock"), check=False, timeout=600)
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        assert r.returncode == 0 and out.splitlines()[-1:] == ["PASS"], f"{name} build:\n{out}\n{err[-20000:]}"
