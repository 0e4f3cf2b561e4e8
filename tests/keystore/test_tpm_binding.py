"""Our ESAPI binding (wvds.tpm2) held against an independent implementation and the C headers.

- Every structure we build is byte-identical to tpm2-pytss's (the tests' venv has it; the product does
  not): the storage primary's name is pinned in existing stores and a PCR selection is part of a sealed
  KEK's policy, so a single differing byte would lock users out of their stores.
- The C buffers we unmarshal into are larger than every structure in tpm2-tss's headers.
- Hostile blobs (a corrupted store.json or key record) are refused, never crash the process.
- The product imports no pyca/cryptography, cffi or tpm2-pytss with the TPM backend loaded.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import pytest
from support.targets import ROOT

from wvds.tpm2 import esys, wire


def _pytss():
    from tpm2_pytss import constants, types
    return constants, types


def test_templates_are_the_ones_tpm2_tools_makes():
    c, t = _pytss()
    primary = t.TPM2B_PUBLIC.parse("ecc256:aes128cfb",
                                   objectAttributes=c.TPMA_OBJECT.DEFAULT_TPM2_TOOLS_CREATEPRIMARY_ATTRS)
    assert wire.ecc_template("ecc256", wire.STORAGE_PRIMARY, "aes128cfb") == primary.marshal()
    attrs = wire.FIXEDTPM | wire.FIXEDPARENT | wire.SENSITIVEDATAORIGIN | wire.USERWITHAUTH | wire.SIGN_ENCRYPT
    signing = t.TPM2B_PUBLIC.parse("ecc256:null:null", objectAttributes=attrs)
    assert wire.ecc_template("ecc256", attrs) == signing.marshal()
    for attrs, policy in ((wire.FIXEDTPM | wire.FIXEDPARENT | wire.USERWITHAUTH, b""),
                          (wire.FIXEDTPM | wire.FIXEDPARENT, bytes(range(32)))):
        sealed = t.TPM2B_PUBLIC(t.TPMT_PUBLIC(type=c.TPM2_ALG.KEYEDHASH, nameAlg=c.TPM2_ALG.SHA256,
                                              objectAttributes=attrs, authPolicy=policy))
        sealed.publicArea.parameters.keyedHashDetail.scheme.scheme = c.TPM2_ALG.NULL
        assert wire.sealed_data_template(attrs, policy) == sealed.marshal()


@pytest.mark.parametrize("bank,pcrs", [("sha256", [0]), ("sha256", [0, 7, 23]), ("sha384", [1, 2, 3, 16])])
def test_pcr_selection(bank, pcrs):
    _, t = _pytss()
    assert wire.pcr_selection(bank, pcrs) == t.TPML_PCR_SELECTION.parse(f"{bank}:{','.join(map(str, pcrs))}").marshal()


def test_small_structures():
    c, t = _pytss()
    assert wire.sensitive_create(b"auth", b"k" * 32) == t.TPM2B_SENSITIVE_CREATE(t.TPMS_SENSITIVE_CREATE(
        userAuth=t.TPM2B_AUTH(b"auth"), data=t.TPM2B_SENSITIVE_DATA(b"k" * 32))).marshal()
    assert wire.sym_def("aes128cfb") == t.TPMT_SYM_DEF(algorithm=c.TPM2_ALG.AES,
                                                       keyBits=t.TPMU_SYM_KEY_BITS(aes=128),
                                                       mode=t.TPMU_SYM_MODE(aes=c.TPM2_ALG.CFB)).marshal()
    scheme = t.TPMT_SIG_SCHEME(scheme=c.TPM2_ALG.ECDSA)
    scheme.details.ecdsa.hashAlg = c.TPM2_ALG.SHA384
    assert wire.ecdsa_scheme("SHA384") == scheme.marshal()
    assert wire.null_hashcheck() == t.TPMT_TK_HASHCHECK(tag=c.TPM2_ST.HASHCHECK, hierarchy=c.TPM2_RH.NULL).marshal()
    assert (wire.TR_NONE, wire.TR_PASSWORD, wire.TR_RH_OWNER) == (c.ESYS_TR.NONE, c.ESYS_TR.PASSWORD,
                                                                   c.ESYS_TR.OWNER)
    assert (wire.RC_AUTH_FAIL, wire.RC_BAD_AUTH, wire.RC_POLICY_FAIL, wire.RC_INTEGRITY, wire.RC_LOCKOUT) == (
        c.TPM2_RC.AUTH_FAIL, c.TPM2_RC.BAD_AUTH, c.TPM2_RC.POLICY_FAIL, c.TPM2_RC.INTEGRITY, c.TPM2_RC.LOCKOUT)


def test_reading_a_public_point_and_a_signature():
    c, t = _pytss()
    x, y = bytes(range(1, 33)), bytes(range(101, 133))
    public = t.TPM2B_PUBLIC.parse("ecc256:null:null")
    public.publicArea.unique.ecc.x, public.publicArea.unique.ecc.y = x, y
    assert wire.ecc_public_point(public.marshal()) == b"\x04" + x + y
    sig = t.TPMT_SIGNATURE(sigAlg=c.TPM2_ALG.ECDSA)
    sig.signature.ecdsa.hash = c.TPM2_ALG.SHA256
    sig.signature.ecdsa.signatureR, sig.signature.ecdsa.signatureS = b"\x01" * 32, b"\x02" * 31
    assert wire.ecdsa_signature(sig.marshal()) == (b"\x01" * 32, b"\x02" * 31)
    with pytest.raises(wire.WireError):
        wire.ecc_public_point(public.marshal()[:-3])
    with pytest.raises(wire.WireError):
        wire.ecc_public_point(t.TPM2B_PUBLIC.parse("ecc384:null:null").marshal())


def test_unmarshal_buffers_are_large_enough(tmp_path):
    """STRUCT_ROOM against sizeof in the installed tpm2-tss headers (what the device's library was built with)."""
    types = sorted(set(esys.UNMARSHALLED) | set(esys.MARSHALLED))
    src = tmp_path / "sizes.c"
    src.write_text("#include <stdio.h>\n#include <tss2/tss2_tpm2_types.h>\nint main(void) {\n"
                   + "".join(f'    printf("{n} %zu\\n", sizeof({n}));\n' for n in types) + "    return 0;\n}\n")
    subprocess.run(["cc", "-o", str(tmp_path / "sizes"), str(src)], check=True)
    sizes = dict(line.split() for line in subprocess.run([str(tmp_path / "sizes")], capture_output=True, text=True,
                                                         check=True).stdout.splitlines())
    assert set(sizes) == set(types)
    assert max(int(v) for v in sizes.values()) <= esys.STRUCT_ROOM, sizes


def test_hostile_blobs_are_refused_not_crashed():
    """What a corrupted store.json or key record hands to libtss2-mu: truncations, trailing bytes, random
    flips and random bytes. Each is unmarshalled or refused with WireError; the process survives."""
    valid = wire.ecc_template("ecc256", wire.STORAGE_PRIMARY, "aes128cfb")
    rng = random.Random(20261207)
    blobs = [valid[:n] for n in range(len(valid))] + [valid + b"\0", b"\xff\xff" + valid[2:]]
    for _ in range(2000):
        b = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        blobs.append(bytes(b))
    blobs += [rng.randbytes(rng.randint(0, 600)) for _ in range(500)]
    refused = 0
    for blob in blobs:
        for type_name in ("TPM2B_PUBLIC", "TPM2B_PRIVATE"):
            try:
                esys._In(type_name, blob).clear()
            except wire.WireError:
                refused += 1
    assert refused > len(blobs)  # most of them (every truncation at least, for both types)


def test_no_second_crypto_library_is_imported():
    """With the TPM key store and engine imported, no pyca/cryptography, cffi or tpm2-pytss in the process."""
    code = textwrap.dedent("""
        import sys
        import wvds.keystore.tpm, wvds.crypto_service.engines.tpm
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("cryptography", "cffi", "_cffi_backend",
                                                                    "tpm2_pytss", "nacl", "Crypto"))
        print(bad)
        sys.exit(1 if bad else 0)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert r.returncode == 0, r.stdout + r.stderr
