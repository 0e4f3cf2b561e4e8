"""Write tests/keystore/data/store-0.2.0: AES keys as release 0.2.0 stored them, before replay windows.

Run once, with the 0.2.0 sources (never again: the point is that the files stay as that release wrote them):
    git worktree add /tmp/v020 f9baf09 && ln -s $PWD/build /tmp/v020/build   (0.2.0 as of that commit)
    PYTHONPATH=/tmp/v020/src:/tmp/v020/tests python tests/keystore/make_0_2_store.py
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from support.fips import fipsinstall
from support.service import ServiceProcess, base_config, file_keystore
from support.targets import HOST
from wvds.client import Client
from wvds.protocol.constants import Algorithm, KeyUsage

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="wvds-020-"))
    try:
        env = fipsinstall(HOST, work)
        keystore = file_keystore(work)
        store, secret = Path(keystore["directory"]), Path(keystore["secret_file"])
        cfg = base_config(work, keystore=keystore)
        manifest = {"version": "0.2.0", "keys": {}}
        with ServiceProcess(HOST, env, work, cfg) as svc, Client(svc.socket) as c:
            for name, usage in (("plain", KeyUsage.ENCRYPT | KeyUsage.DECRYPT),
                                ("protected", KeyUsage.ENCRYPT | KeyUsage.DECRYPT | KeyUsage.REPLAY_PROTECT)):
                kid = c.generate_key(Algorithm.AES_256_GCM, usage, f"0.2.0-{name}").key_id
                sealed = [c.encrypt(kid, b"0.2.0 %s %d" % (name.encode(), i), b"ad").hex() for i in range(3)]
                manifest["keys"][name] = {"key_id": kid, "usage": int(usage), "sealed": sealed}
        shutil.rmtree(DATA / "store-0.2.0", ignore_errors=True)
        shutil.copytree(store, DATA / "store-0.2.0", ignore=shutil.ignore_patterns("lock"))
        shutil.copy(secret, DATA / "store-0.2.0.secret")
        (DATA / "store-0.2.0.json").write_text(json.dumps(manifest, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
