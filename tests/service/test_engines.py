"""The engines (crypto_service/engines): one interface, three implementations, and handlers that never ask which.

Behaviour is covered end to end by the service and keystore tests (software keys everywhere, TPM and
PKCS#11 keys in tests/keystore, their loss and return in tests/faults); these check the structure."""
import ast
from pathlib import Path

import pytest

from wvds.crypto_service import engines
from wvds.crypto_service.engines.base import Engine
from wvds.crypto_service.engines.pkcs11 import Pkcs11Engine
from wvds.crypto_service.engines.tpm import TpmEngine
from wvds.keystore import pkcs11 as pkcs11_store
from wvds.keystore import tpm as tpm_store
from wvds.protocol.constants import ECDSA, ML_DSA, ML_KEM, SLH_DSA, Algorithm

OPS = Path(engines.__file__).parent.parent / "ops"
# the private-key operations each algorithm needs of the engine holding its keys
NEEDS = {Algorithm.AES_256_GCM: ("aes_gcm_encrypt", "aes_gcm_decrypt"),
         **{a: ("mldsa_sign",) for a in ML_DSA}, **{a: ("slhdsa_sign",) for a in SLH_DSA},
         **{a: ("ecdsa_sign",) for a in ECDSA}, **{a: ("mlkem_decapsulate",) for a in ML_KEM}}


def implements(engine: type, operation: str) -> bool:
    return getattr(engine, operation) is not getattr(Engine, operation)


def test_the_software_engine_performs_every_operation():
    for algorithm, operations in NEEDS.items():
        assert all(implements(engines.SoftwareEngine, op) for op in operations), algorithm
    assert engines.SoftwareEngine().algorithms() == frozenset(Algorithm)


@pytest.mark.parametrize("engine, names", [(TpmEngine, tpm_store.NATIVE_NAMES),
                                           (Pkcs11Engine, pkcs11_store.NATIVE_NAMES)], ids=["tpm", "pkcs11"])
def test_an_element_engine_performs_what_its_store_lets_keystore_native_name(engine, names):
    for algorithm in names.values():
        assert all(implements(engine, op) for op in NEEDS[algorithm]), (engine.name, algorithm)


def test_stores_without_an_element_have_no_element_engine():
    class Store:
        name = "file"
    assert engines.element_engine(Store()) is None


def test_handlers_never_ask_which_engine_holds_a_key():
    for path in sorted(OPS.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} \
            | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not names & {"native", "handle", "in_process", "SoftwareEngine", "TpmEngine", "Pkcs11Engine",
                            "element", "software"}, path.name
