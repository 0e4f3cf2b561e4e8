"""Every algorithm table is derived from the registry (src/wvds/algorithms.py): the provider's C tables are
generated from it (the build checks them), and the sizes written out in wvds_crypto.h agree with it."""
import os
import re
import subprocess
import sys

from wvds import algorithms, algorithms_c, ossl
from wvds.algorithms import REGISTRY
from wvds.cli import wvdsctl
from wvds.crypto_service.keys import OSSL_NAME
from wvds.est_service import keyref
from wvds.est_service import keys as est_keys
from wvds.protocol.constants import Algorithm

from support.targets import ROOT

PROVIDER = ROOT / "src" / "c" / "provider"
TABLES = [PROVIDER / name for name in algorithms_c.BLOCKS]
HEADER = ROOT / "src" / "c" / "include" / "wvds_crypto.h"


def test_generated_tables_are_current():
    r = subprocess.run([sys.executable, "-m", "wvds.algorithms_c", "--check", *map(str, TABLES)],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, f"stale table; run python -m wvds.algorithms_c --update ...\n{r.stdout}{r.stderr}"


def test_check_reports_a_stale_table_and_update_repairs_it(tmp_path):
    stale = tmp_path / "keymgmt.c"
    stale.write_text((PROVIDER / "keymgmt.c").read_text().replace('"prime256v1", 65, 72,', '"prime256v1", 65, 71,'))
    assert algorithms_c.main(["--check", str(stale)]) == 1
    assert algorithms_c.main(["--update", str(stale)]) == 0
    assert stale.read_text() == (PROVIDER / "keymgmt.c").read_text()


def test_provider_registers_every_post_quantum_signature_key_with_its_oid():
    provider = (PROVIDER / "provider.c").read_text()
    for i in algorithms.signing_keys():
        if i.family != "EC":
            assert f":{i.oid}:id-{i.ossl_name.lower()}\"" in provider, i.algorithm
            assert f'"{i.keytype}")' in (PROVIDER / "decoder.c").read_text()
    stale = (PROVIDER / "provider.c").read_text().replace("2.16.840.1.101.3.4.3.31", "2.16.840.1.101.3.4.3.99")
    assert algorithms_c.generate("provider.c", stale) == provider


def test_every_wire_algorithm_is_registered_once_per_vocabulary():
    assert set(REGISTRY) == set(Algorithm)
    for attr in ("cli_name", "ossl_name", "keyref_name"):
        names = [getattr(i, attr) for i in REGISTRY.values() if getattr(i, attr)]
        assert len(names) == len(set(names)), attr


def test_python_tables_are_derived():
    assert OSSL_NAME == algorithms.ossl_names()
    assert set(ossl.ALGORITHMS) == set(algorithms.BY_OSSL_NAME)
    assert est_keys.ALGORITHMS == {"ML-DSA-44": Algorithm.ML_DSA_44, "ML-DSA-65": Algorithm.ML_DSA_65,
                                   "ML-DSA-87": Algorithm.ML_DSA_87, "EC-P-256": Algorithm.ECDSA_P256,
                                   "EC-P-384": Algorithm.ECDSA_P384}
    assert est_keys.CONFIG_NAMES["ECDSA-P384"] == "EC-P-384" and est_keys.CONFIG_NAMES["EC-P-256"] == "EC-P-256"
    assert keyref.ALGORITHMS["EC-P-256"] == "ECDSA-P256" and keyref.ALGORITHMS["ML-DSA-87"] == "ML-DSA-87"
    assert wvdsctl.ALGS["p-384"] == Algorithm.ECDSA_P384 and wvdsctl.ALGS["slh-dsa-shake-256f"].name.endswith("256F")


def test_header_sizes_agree_with_the_registry():
    text = HEADER.read_text()

    def size(name: str) -> int:
        m = re.search(rf"#define {name} (\d+)u", text)
        assert m, name
        return int(m.group(1))

    for i in REGISTRY.values():
        if i.family == "ML-DSA":
            n = i.algorithm.name.replace("ML_DSA_", "MLDSA")
            assert (size(f"WVDS_{n}_PUBLIC_KEY_SIZE"), size(f"WVDS_{n}_SIGNATURE_SIZE")) == (i.public_size,
                                                                                            i.signature_size)
        elif i.family == "ML-KEM":
            n = i.algorithm.name.replace("ML_KEM_", "MLKEM")
            assert (size(f"WVDS_{n}_PUBLIC_KEY_SIZE"), size(f"WVDS_{n}_CIPHERTEXT_SIZE")) == (i.public_size,
                                                                                             i.ciphertext_size)
        elif i.family == "EC":
            assert (size(f"WVDS_{i.algorithm.name}_PUBLIC_KEY_SIZE"),
                    size(f"WVDS_{i.algorithm.name}_MAX_SIGNATURE_SIZE")) == (i.public_size, i.signature_size)
        elif i.family == "SLH-DSA":
            n = "SLHDSA" + i.algorithm.name[-4:]  # 128S
            assert size(f"WVDS_{n}_SIGNATURE_SIZE") == i.signature_size
