"""SLH-DSA (FIPS 205) in the service: the twelve parameter sets of OpenSSL 3.6's FIPS provider.

Keys generated in the service or imported (seed SK.seed ‖ SK.prf ‖ PK.seed, private key, public key);
pure SLH-DSA with and without a context string; verification with a key id or an inline public key;
every refusal with its status; the C library's wvds_slhdsa_* for both architectures. The cross-check
against liboqs is in tests/conformance/.
"""
from __future__ import annotations

import subprocess

import pytest

from support.service import clib_path, status_of
from support.targets import ARCHS, ROOT, Target
from wvds.protocol.constants import SLH_DSA, Algorithm, KeyFormat, KeyUsage, Status
from wvds.protocol.payloads import KeyRef

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()

# n, signature size (FIPS 205 table 2)
SIZES = {**{a: (16, 7856 if a.name.endswith("S") else 17088) for a in SLH_DSA if "_128" in a.name},
         **{a: (24, 16224 if a.name.endswith("S") else 35664) for a in SLH_DSA if "_192" in a.name},
         **{a: (32, 29792 if a.name.endswith("S") else 49856) for a in SLH_DSA if "_256" in a.name}}


# The small-signature ("s") sets take 0.1-1.5 s per key or signature natively; emulated (aarch64 under
# qemu-user) that is minutes, past any sensible client timeout.
SLOW = {a for a in SLH_DSA if a.name.endswith("S")}


@pytest.mark.parametrize("alg", SLH_DSA, ids=lambda a: a.name)
def test_generate_sign_verify(client, programs, alg):
    if alg in SLOW and not programs.target.native:
        pytest.skip("an emulated small-signature SLH-DSA set takes minutes: run natively (x86_64 and source)")
    n, sig_size = SIZES[alg]
    created = client.generate_key(alg)
    assert len(created.public_key) == 2 * n
    assert client.describe_key(created.key_id).usage == KeyUsage.SIGN | KeyUsage.VERIFY
    for ctx in (b"", b"device 7"):
        sig = client.slhdsa_sign(created.key_id, b"firmware image", ctx)
        assert len(sig) == sig_size
        assert client.slhdsa_verify(created.key_id, b"firmware image", sig, ctx)
        inline = KeyRef(algorithm=alg, public_key=created.public_key)
        assert client.slhdsa_verify(inline, b"firmware image", sig, ctx)
        assert not client.slhdsa_verify(inline, b"firmware imagE", sig, ctx)
        assert not client.slhdsa_verify(inline, b"firmware image", sig, ctx + b"x")
        assert not client.slhdsa_verify(created.key_id, b"firmware image", sig[:-1] + bytes([sig[-1] ^ 1]), ctx)


@pytest.mark.parametrize("alg", [Algorithm.SLH_DSA_SHA2_128F, Algorithm.SLH_DSA_SHAKE_256F], ids=lambda a: a.name)
def test_import_forms_give_one_key(client, alg):
    n, _ = SIZES[alg]
    seed = bytes(range(3 * n))
    usage = KeyUsage.SIGN | KeyUsage.VERIFY | KeyUsage.EXPORTABLE
    from_seed = client.import_key(alg, KeyFormat.SEED, seed, usage)
    assert from_seed.public_key[:n] == seed[2 * n:]  # PK.seed is the seed's last third (FIPS 205 10.1)
    private = client.export_key(from_seed.key_id, KeyFormat.EXPANDED)
    assert len(private) == 4 * n and private[:3 * n] == seed and private[3 * n:] == from_seed.public_key[n:]
    from_private = client.import_key(alg, KeyFormat.EXPANDED, private, KeyUsage.SIGN | KeyUsage.VERIFY)
    assert from_private.public_key == from_seed.public_key
    public = client.import_key(alg, KeyFormat.PUBLIC, from_seed.public_key).key_id
    sig = client.slhdsa_sign(from_private.key_id, b"m")
    assert client.slhdsa_verify(public, b"m", sig)
    assert client.export_key(from_seed.key_id, KeyFormat.SEED) == seed  # stored as given
    generated = client.generate_key(alg, usage).key_id  # stored as its private key: no seed to give out
    assert status_of(client.export_key, generated, KeyFormat.SEED) == Status.INVALID_PAYLOAD
    assert len(client.export_key(generated, KeyFormat.EXPANDED)) == 4 * n


def test_refusals(client):
    slh = client.generate_key(Algorithm.SLH_DSA_SHA2_128F).key_id
    dsa = client.generate_key(Algorithm.ML_DSA_44).key_id
    assert status_of(client.slhdsa_sign, dsa, b"m") == Status.UNSUPPORTED_ALGORITHM  # each family its requests
    assert status_of(client.mldsa_sign, slh, b"m") == Status.UNSUPPORTED_ALGORITHM
    short = KeyRef(algorithm=Algorithm.SLH_DSA_SHA2_128F, public_key=bytes(31))
    assert status_of(client.slhdsa_verify, short, b"m", bytes(17088)) == Status.INVALID_PAYLOAD
    assert not client.slhdsa_verify(slh, b"m", bytes(100))  # wrong length: does not verify
    for form, size in ((KeyFormat.SEED, 47), (KeyFormat.EXPANDED, 63), (KeyFormat.RAW, 32)):
        assert status_of(client.import_key, Algorithm.SLH_DSA_SHA2_128F, form, bytes(size)) == Status.INVALID_PAYLOAD
    verify_only = client.import_key(Algorithm.SLH_DSA_SHA2_128F, KeyFormat.PUBLIC,
                                    client.export_public(slh).public_key).key_id
    assert status_of(client.slhdsa_sign, verify_only, b"m") == Status.PERMISSION_DENIED


@pytest.mark.parametrize("arch", ARCHS)
def test_c_library(service, arch, tmp_path):
    lib, compiler = clib_path(Target(arch)), Target(arch).compiler
    program = tmp_path / "slhdsa"
    subprocess.run([compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-o", str(program),
                    str(ROOT / "tests" / "service" / "c" / "slhdsa.c"), f"-I{ROOT / 'src' / 'c' / 'include'}",
                    f"-I{ROOT / 'tests' / 'c'}", f"-L{lib.parent}", "-ll4re_crypto_service",
                    f"-Wl,-rpath,{lib.parent}"], check=True)
    r = Target(arch).run(program, service.socket, check=False, timeout=300)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    assert r.returncode == 0 and out.splitlines()[-1:] == ["PASS"], out + err
