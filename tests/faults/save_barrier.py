"""crypto_service from source with a barrier inside the key store's save (tests only).

    WVDS_TEST_SAVE_BARRIER=DIR python tests/faults/save_barrier.py --config FILE

While DIR/armed exists, every key save first creates DIR/saving-<key id>, then waits until DIR/go
exists. A test can so hold one client's request inside the save for as long as it likes while
another client acts: deterministic, in the real service process, with the real file key store.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from wvds.crypto_service.main import main
from wvds.keystore.directory import EncryptedDirectoryStore

BARRIER = Path(os.environ["WVDS_TEST_SAVE_BARRIER"])
_save = EncryptedDirectoryStore.save


def save(self, record):
    if (BARRIER / "armed").exists():
        (BARRIER / f"saving-{record.key_id:08x}").touch()
        while not (BARRIER / "go").exists():
            time.sleep(0.01)
    return _save(self, record)


EncryptedDirectoryStore.save = save
sys.exit(main(sys.argv[1:]))
