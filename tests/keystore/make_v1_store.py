"""Write tests/keystore/data/store-v1: a key store of on-disk format version 1, made by the real service.

Run once per format version (never again for v1: the point is that the files stay as the first release wrote
them):  PYTHONPATH=src:tests python tests/keystore/make_v1_store.py
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "src")]

from support.fips import fipsinstall  # noqa: E402
from support.service import ServiceProcess, base_config  # noqa: E402
from support.targets import HOST  # noqa: E402

from wvds.client import Client  # noqa: E402
from wvds.protocol.constants import Algorithm, KeyFormat, KeyUsage  # noqa: E402

DATA = Path(__file__).parent / "data"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="wvds-v1-"))
    try:
        env = fipsinstall(HOST, work)
        secret = work / "secret"
        secret.write_bytes(os.urandom(32))
        secret.chmod(0o600)
        store = work / "store"
        cfg = base_config(work, keystore={"backend": "file", "directory": str(store), "secret_file": str(secret)})
        manifest = {"keys": {}}
        with ServiceProcess(HOST, env, work, cfg) as svc, Client(svc.socket) as c:
            aes = c.generate_key(Algorithm.AES_256_GCM, KeyUsage.ENCRYPT | KeyUsage.DECRYPT, "v1-aes").key_id
            sealed = c.encrypt(aes, b"written by store format v1", b"v1")
            seed = os.urandom(32)
            dsa = c.import_key(Algorithm.ML_DSA_44, KeyFormat.SEED, seed,
                               KeyUsage.SIGN | KeyUsage.VERIFY | KeyUsage.EXPORTABLE, "v1-mldsa")
            for kid in (aes, dsa.key_id):
                d = c.describe_key(kid)
                manifest["keys"][f"{kid:08x}"] = {"algorithm": d.algorithm.name, "label": d.label, "usage": d.usage,
                                                  "created": d.created}
            manifest["keys"][f"{aes:08x}"].update(sealed=sealed.hex(), uses_reserved=4096)
            manifest["keys"][f"{dsa.key_id:08x}"]["public_key"] = dsa.public_key.hex()
            manifest["exportable"], manifest["seed"] = f"{dsa.key_id:08x}", seed.hex()
        shutil.rmtree(DATA / "store-v1", ignore_errors=True)
        DATA.mkdir(exist_ok=True)
        shutil.copytree(store, DATA / "store-v1", ignore=shutil.ignore_patterns("lock"))
        shutil.copy(secret, DATA / "store-v1.secret")
        (DATA / "store-v1.json").write_text(json.dumps(manifest, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
