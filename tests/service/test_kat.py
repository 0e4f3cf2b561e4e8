"""NIST known-answer vectors through the service, via key import (cryptography-vectors 50).

- ML-DSA (FIPS 204): import the seed xi -> the published public key; import the expanded
  private key -> the same public key; the published signatures (pure, with context)
  verify. Our signing is hedged, so its signatures are checked by verification, not bytes.
- ML-KEM (FIPS 203): import the seed d||z -> the published public key; decapsulation of the
  published ciphertext gives the published secret, and of the modified ciphertext the
  published implicit-rejection secret.
- AES-256-GCM (CAVP gcmDecrypt256, 96-bit IVs): every vector decrypts to its plaintext or
  fails exactly where the file says FAIL.
"""
from pathlib import Path

import cryptography_vectors
import pytest

from wvds.client import ServiceStatusError
from wvds.protocol.constants import Algorithm, KeyFormat, KeyUsage, Status

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()

VECTORS = Path(cryptography_vectors.__file__).parent


def records(text: str, start_key: str):
    """Blocks of `key = value` lines (values may be empty); a new block starts at start_key.
    A bare FAIL line marks the block as an expected authentication failure."""
    rec: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line == "FAIL":
            rec["FAIL"] = "1"
        elif "=" in line and not line.startswith(("[", "#")):
            k, v = (x.strip() for x in line.split("=", 1))
            if k == start_key and rec:
                yield rec
                rec = {}
            rec[k] = v
    if rec:
        yield rec


MLDSA = [(Algorithm.ML_DSA_44, "44"), (Algorithm.ML_DSA_65, "65"), (Algorithm.ML_DSA_87, "87")]
MLKEM = [(Algorithm.ML_KEM_512, "512"), (Algorithm.ML_KEM_768, "768"), (Algorithm.ML_KEM_1024, "1024")]


@pytest.mark.parametrize("alg,size", MLDSA, ids=[s for _, s in MLDSA])
def test_mldsa_kat(client, alg, size):
    path = VECTORS / "asymmetric" / "MLDSA" / f"kat_MLDSA_{size}_det_pure.rsp"
    for n, v in enumerate(records(path.read_text(), "count")):
        if n >= 25:  # 25 per parameter set keeps the run short; every field kind is covered
            break
        pk = bytes.fromhex(v["pk"])
        from_seed = client.import_key(alg, KeyFormat.SEED, bytes.fromhex(v["xi"]))
        assert from_seed.public_key == pk, f"count {v['count']}"
        from_sk = client.import_key(alg, KeyFormat.EXPANDED, bytes.fromhex(v["sk"]))
        assert from_sk.public_key == pk
        sm, mlen = bytes.fromhex(v["sm"]), int(v["mlen"])
        sig, msg = sm[:-mlen] if mlen else sm, sm[len(sm) - mlen:]
        assert client.mldsa_verify(from_seed.key_id, msg, sig, bytes.fromhex(v["ctx"])), f"count {v['count']}"
        assert not client.mldsa_verify(from_seed.key_id, msg + b"\x00", sig, bytes.fromhex(v["ctx"]))
        client.delete_key(from_seed.key_id)
        client.delete_key(from_sk.key_id)


@pytest.mark.parametrize("alg,size", MLKEM, ids=[s for _, s in MLKEM])
def test_mlkem_kat(client, alg, size):
    path = VECTORS / "asymmetric" / "MLKEM" / f"kat_MLKEM_{size}.rsp"
    usage = KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET
    for n, v in enumerate(records(path.read_text(), "count")):
        if n >= 25:
            break
        key = client.import_key(alg, KeyFormat.SEED, bytes.fromhex(v["d"] + v["z"]), usage)
        assert key.public_key == bytes.fromhex(v["pk"]), f"count {v['count']}"
        assert client.mlkem_decaps(key.key_id, bytes.fromhex(v["ct"]), True).secret == bytes.fromhex(v["ss"])
        # implicit rejection: a modified ciphertext gives the published pseudo-random secret
        assert client.mlkem_decaps(key.key_id, bytes.fromhex(v["ct_n"]), True).secret == bytes.fromhex(v["ss_n"])
        client.delete_key(key.key_id)


def test_aes_gcm_cavp_decrypt(client):
    path = VECTORS / "ciphers" / "AES" / "GCM" / "gcmDecrypt256.rsp"
    checked = failures = 0
    for section in path.read_text().split("[Keylen = 256]")[1:]:
        iv_bits = int(section.split("[IVlen = ")[1].split("]")[0])
        tag_bits = int(section.split("[Taglen = ")[1].split("]")[0])
        if iv_bits != 96 or tag_bits != 128:
            continue  # the service uses 96-bit IVs and 128-bit tags only
        for v in records(section, "Count"):
            kid = client.import_key(Algorithm.AES_256_GCM, KeyFormat.RAW, bytes.fromhex(v["Key"])).key_id
            sealed, aad = bytes.fromhex(v["IV"] + v["CT"] + v["Tag"]), bytes.fromhex(v["AAD"])
            if "FAIL" in v:
                with pytest.raises(ServiceStatusError) as e:
                    client.decrypt(kid, sealed, aad)
                assert e.value.status == Status.DECRYPTION_FAILED, f"Count {v['Count']}"
                failures += 1
            else:
                assert client.decrypt(kid, sealed, aad) == bytes.fromhex(v["PT"]), f"Count {v['Count']}"
            client.delete_key(kid)
            checked += 1
    assert checked > 100 and failures > 10, (checked, failures)
