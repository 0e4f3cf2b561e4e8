"""The service's AES fast path (src/c/service/) as a C unit test with the real libcrypto:
tests/c/fast_path/fast_path_test.c, under ASan/UBSan natively and as the hardened -O2 build
for aarch64 under qemu-user. The same code inside the running service: tests/service/test_fast_path.py."""
from support.clib import build_variants, compile_c, library_includes, library_sources
from support.targets import BUILD, ROOT

TEST = ROOT / "tests" / "c" / "fast_path" / "fast_path_test.c"


def test_fast_path_unit(arch, runner, tmp_path):
    ossl_lib = BUILD / arch / "openssl" / "lib"
    for name, flags in build_variants(arch).items():
        program = compile_c(arch, library_sources() + [TEST], tmp_path / f"fast_path_test-{name}",
                            [*library_includes(arch), f"-I{ROOT / 'tests' / 'c'}", "-g", *flags],
                            [f"-L{ossl_lib}", "-lcrypto", f"-Wl,-rpath,{ossl_lib}"])
        r = runner.run(program, check=False, timeout=600)
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        assert r.returncode == 0 and out.splitlines()[-1:] == ["PASS"], f"{name} build:\n{out}\n{err[-20000:]}"
