"""Entry point: wvds_est_service [--config FILE] {run | once | status | check-config} [--version].

  run           the daemon (default): watches every configured certificate until SIGTERM
  once          one pass: enroll/renew what is due (--force: everything); exit 0 if every
                attempt succeeded and every selected certificate is valid afterwards, 1 otherwise
  status        print the status file the daemon writes (--json for the raw document)
  check-config  validate the configuration and exit

Exit status 2: invalid configuration; 1: cannot start (FIPS provider, state dir).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from wvds import logs
from wvds.est_service import config as config_mod
from wvds.est_service.errors import ConfigError
from wvds.programs import version_text

DEFAULT_CONFIG = "/etc/opt/wvds/est_service.json"


def _load_fips(cfg) -> str | None:
    """Bring up OpenSSL in FIPS mode (every signature check and TLS runs in it); an error text or None."""
    from wvds import ossl
    try:
        info = ossl.load(cfg.openssl_config, cfg.openssl_modules)
    except ossl.OsslError as e:
        return f"FIPS provider not available: {e}"
    import ssl
    if ssl.OPENSSL_VERSION != info.openssl_version:
        # TLS must run in the same libcrypto, and so in the FIPS provider just loaded
        return (f"Python's ssl module uses {ssl.OPENSSL_VERSION}, not the product's {info.openssl_version} "
                f"({info.libcrypto_path}); run with LD_LIBRARY_PATH=<openssl>/lib")
    current = [s.name for s in cfg.servers.values() if s.reenroll.current]
    if current and "wvds" not in info.providers:
        # re-enrollment would fail at every attempt; say why now
        return (f'servers {", ".join(current)}: auth.reenroll.client_cert "current" needs the wvds OpenSSL provider, '
                f"which the OpenSSL configuration ({cfg.openssl_config or '$OPENSSL_CONF'}) does not activate "
                f"(providers: {', '.join(info.providers)}): add wvds = wvds_sect to [provider_sect], a [wvds_sect] "
                f"with module = <absolute path of wvds.so> and activate = 1, and default_properties = "
                f"fips=yes,?provider!=wvds (docs/provider.md)")
    return None


def print_status(cfg, as_json: bool) -> int:
    try:
        with open(cfg.status_file, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        print(f"no status yet ({cfg.status_file} missing: has est_service run?)", file=sys.stderr)
        return 1
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for c in doc.get("certificates", []):
        # the file is written when something happens; time alone moves a certificate on
        if c.get("state") in ("valid", "renewal due") and c.get("not_after") and c["not_after"] <= now:
            c["state"] = "expired"
        elif c.get("state") == "valid" and c.get("renew_after") and c["renew_after"] <= now:
            c["state"] = "renewal due"
    if as_json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"status of {doc.get('updated')} (est_service pid {doc.get('pid')})")
        for c in doc.get("certificates", []):
            print(f"\n{c['name']}  [{c.get('state')}]  server {c.get('server')}")
            for key in ("subject", "differs_from_request", "serial", "not_before", "not_after", "renew_after",
                        "next_attempt", "last_attempt", "last_success", "failures", "last_error", "pending", "key_id",
                        "key_algorithm", "certificate"):
                if c.get(key) not in (None, [], ""):
                    print(f"  {key:13} {c[key]}")
    bad = [c for c in doc.get("certificates", []) if c.get("state") not in ("valid", "renewal due")]
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="wvds_est_service", description="WvdS EST enrollment and renewal daemon")
    ap.add_argument("--config", default=DEFAULT_CONFIG, help=f"config.json (default {DEFAULT_CONFIG})")
    ap.add_argument("--check-config", action="store_true", help="validate the config and exit")
    ap.add_argument("--version", action="store_true", help="print product, OpenSSL and FIPS provider versions")
    sub = ap.add_subparsers(dest="command")
    sub.add_parser("run", help="run the renewal daemon (default)")
    once = sub.add_parser("once", help="enroll/renew what is due, then exit")
    once.add_argument("--force", action="store_true", help="renew every selected certificate now")
    once.add_argument("--name", action="append", help="only this certificate (repeatable)")
    st = sub.add_parser("status", help="show the status of every certificate")
    st.add_argument("--json", action="store_true", help="the raw status document")
    sub.add_parser("check-config", help="validate the config and exit")
    args = ap.parse_args(argv)

    if args.version:
        print(version_text("wvds_est_service"))
        return 0
    try:
        cfg = config_mod.load(args.config)
    except ConfigError as e:
        print(f"wvds_est_service: invalid configuration:\n{e}", file=sys.stderr)
        return 2
    command = args.command or "run"
    if args.check_config or command == "check-config":
        print(f"{args.config}: OK")
        return 0
    if command == "status":
        return print_status(cfg, args.json)

    logs.setup(cfg.log_level)
    problem = _load_fips(cfg)
    if problem:
        print(f"wvds_est_service: cannot start: {problem}", file=sys.stderr)
        return 1
    import logging
    log = logging.getLogger("wvds.est")
    from wvds.est_service.renewal import Daemon
    try:
        daemon = Daemon(cfg)
        daemon.start()
    except Exception as e:  # state dir unwritable, corrupt state: say so and stop
        print(f"wvds_est_service: cannot start: {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    if command == "once":
        try:
            ok = daemon.once(force=args.force, names=args.name)
        finally:
            daemon.close()
        for line in daemon.skipped:
            print(f"wvds_est_service: {line}", file=sys.stderr)
        return 0 if ok else 1

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("stopping", extra={"signal": signum})
        stop.set()
        daemon.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    crashed = []

    def work():
        try:
            daemon.run(stop)
        except BaseException:  # a bug: log it and exit non-zero so the supervisor restarts us
            log.exception("renewal loop failed")
            crashed.append(True)

    worker = threading.Thread(target=work, name="est-renewal", daemon=True)
    worker.start()
    log.info("est_service ready", extra={"certificates": [c.name for c in cfg.certificates],
                                         "status_file": cfg.status_file})
    while worker.is_alive():
        worker.join(0.5)
    daemon.write_status()
    daemon.close()
    log.info("est_service stopped")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
