#!/usr/bin/env python3
"""The resubmitted-slots attack of the trust review, measured: what one client's memory writes cost the service.

    python bench/slot_flip_attack.py                 # this checkout, 8 s
    python bench/slot_flip_attack.py --seconds 30
    python bench/slot_flip_attack.py --root /path/to/an/older/checkout   # built with 'scons clib'

Starts crypto_service from source (FIPS, memory key store, rate limit off, 8 slots), makes an
ML-DSA-87 key and fills all 8 slots with signature requests over 60 000-byte messages; then, for
--seconds, flips every slot it sees BUSY back to SUBMITTED (and rings the doorbell) and resubmits
every answered slot. Reports the flips and the service's resident memory at the start, at its peak
and 2 s after. Before the fix every flip queued the request once more (hostile/test_slot_resubmission.py
is the test; docs/hardening.md has the numbers).
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
from pathlib import Path


def rss_mib(pid: int) -> float:
    return int(next(line for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS")).split()[1]) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to run")
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    sys.path[:0] = [str(args.root / "tests"), str(args.root / "src")]
    from support.fips import fipsinstall
    from support.rawclient import BUSY, DONE, RawClient
    from support.service import ServiceProcess, base_config
    from support.targets import HOST
    from wvds.client import Client
    from wvds.protocol.constants import Algorithm, RequestType
    from wvds.protocol.header import pack_request
    from wvds.protocol.payloads import MldsaSignRequest

    work = Path(tempfile.mkdtemp(prefix="wvds-flip-"))
    cfg = base_config(work, log={"level": "info"},
                      limits={"slots_per_client": 8, "rate_limit": {"requests_per_second": 0}})
    with ServiceProcess(HOST, fipsinstall(HOST, work), work, cfg) as svc:
        with Client(svc.socket) as c:
            key = c.generate_key(Algorithm.ML_DSA_87).key_id
        frame = pack_request(RequestType.MLDSA_SIGN, MldsaSignRequest(key, os.urandom(60_000)).encode())
        with RawClient(svc.socket, slots=8) as raw:
            for s in range(8):
                raw.submit(frame, s)
            for s in range(8):
                raw.wait(s, 60)
            start = peak = rss_mib(svc.proc.pid)
            flips = 0
            for s in range(8):
                raw.submit(frame, s)
            end, sample = time.monotonic() + args.seconds, 0.0
            while (now := time.monotonic()) < end:
                if now >= sample:
                    peak, sample = max(peak, rss_mib(svc.proc.pid)), now + 0.1
                for s in range(8):
                    state = raw.state(s)
                    if state == BUSY:
                        struct.pack_into("<I", raw.map, raw.slot_base(s), 1)  # SUBMITTED
                        os.eventfd_write(raw.doorbell, 1)
                        flips += 1
                    elif state == DONE:
                        raw.submit(frame, s)
            time.sleep(2)
            after = rss_mib(svc.proc.pid)
    print(f"{args.root}: {flips} flips in {args.seconds:.0f} s; service RSS {start:.0f} MiB at the start, "
          f"{max(peak, after):.0f} MiB at the peak, {after:.0f} MiB 2 s after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
