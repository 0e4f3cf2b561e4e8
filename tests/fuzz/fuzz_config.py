"""Fuzz target: the config loaders of both daemons, from the bytes of config.json.

Byte 0 picks the loader (even: crypto_service, odd: est_service), the rest is written to a file and
loaded the way the daemons do it at start-up (`config.load(path)`: JSON, then field-by-field
validation). The only acceptable failure is the loader's ConfigError, which the daemon prints as
"FILE: field: problem" and exits with status 2; any other exception is a crash (a traceback instead
of a message). A config the crypto_service loader accepts must also describe a usable socket mode.

    python tests/fuzz/fuzz_config.py -dict=tests/fuzz/config.dict tests/fuzz/corpus/config
"""
from __future__ import annotations

import os
import tempfile

import fuzzlib

import atheris

with atheris.instrument_imports(include=["wvds.crypto_service.config", "wvds.est_service.config"]):
    from wvds.crypto_service import config as crypto_config
    from wvds.crypto_service.errors import ConfigError as CryptoConfigError
    from wvds.est_service import config as est_config
    from wvds.est_service.errors import ConfigError as EstConfigError

PATH = os.path.join(tempfile.mkdtemp(prefix="wvds-fuzz-config-"), "config.json")


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    with open(PATH, "wb") as f:
        f.write(data[1:])
    if data[0] % 2 == 0:
        try:
            cfg = crypto_config.load(PATH)
        except CryptoConfigError:
            return
        if not 0 <= cfg.socket_mode <= 0o777:
            raise AssertionError(f"accepted socket mode {cfg.socket_mode:o}")
    else:
        try:
            est_config.load(PATH)
        except EstConfigError:
            return


if __name__ == "__main__":
    fuzzlib.run(TestOneInput)
