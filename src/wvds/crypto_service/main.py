"""Entry point: wvds_crypto_service [--config FILE] [--check-config] [--version]."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from wvds import logs
from wvds.crypto_service import config as config_mod
from wvds.crypto_service.errors import ConfigError
from wvds.programs import version_text

DEFAULT_CONFIG = "/etc/opt/wvds/crypto_service.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="wvds_crypto_service", description="WvdS crypto service daemon")
    ap.add_argument("--config", default=DEFAULT_CONFIG, help=f"config.json (default {DEFAULT_CONFIG})")
    ap.add_argument("--check-config", action="store_true", help="validate the config and exit")
    ap.add_argument("--version", action="store_true", help="print product, OpenSSL and FIPS provider versions")
    args = ap.parse_args(argv)

    if args.version:
        print(version_text("wvds_crypto_service"))
        return 0
    try:
        cfg = config_mod.load(args.config)
    except ConfigError as e:
        print(f"wvds_crypto_service: invalid configuration:\n{e}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"{args.config}: OK")
        return 0

    logs.setup(cfg.log_level)
    from wvds.crypto_service.service import CryptoService, StartupError
    service = CryptoService(cfg)
    done = threading.Event()

    def on_signal(signum, _frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        service.start()
    except StartupError as e:
        print(f"wvds_crypto_service: cannot start: {e}", file=sys.stderr)
        service.stop()
        return 1
    from wvds.crypto_service.memory import release_startup_pages
    release_startup_pages()
    while not done.wait(1.0):
        pass
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
