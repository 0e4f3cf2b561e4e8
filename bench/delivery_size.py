#!/usr/bin/env python3
"""What the delivery tarball weighs: per architecture and per top directory, and its largest files.

    python bench/delivery_size.py [dist/wvds-crypto-svc-*-oem-delivery.tar.gz] [--top 12]

Sizes are of the files as unpacked (symbolic links count nothing: bin/<arch>/libcrypto.so.3 links
to lib/<arch>/); "installed" is what install.sh puts on a device of one architecture - its bin/
and lib/ and everything that is not per architecture. MB = 10^6 bytes.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))
from delivery import ARCHS, size_part  # noqa: E402  the grouping README_OEM's size table uses


def main() -> int:
    ap = argparse.ArgumentParser(description="delivery tarball sizes")
    ap.add_argument("tarball", nargs="?", help="default: the one in dist/")
    ap.add_argument("--top", type=int, default=12, help="how many of the largest files to list")
    args = ap.parse_args()
    path = Path(args.tarball) if args.tarball else next(iter(sorted((ROOT / "dist").glob("*-oem-delivery.tar.gz"))))
    by_dir: dict[str, int] = collections.Counter()
    files = []
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            rel = m.name.split("/", 1)[1]
            by_dir[size_part(rel)] += m.size
            files.append((m.size, rel))
    print(f"{path.name}: {os.path.getsize(path) / 1e6:.2f} MB (gzip)\n")
    print("| part | " + " | ".join(ARCHS) + " |\n|---|" + "---|" * len(ARCHS))
    for top in ("bin", "lib"):
        print(f"| `{top}/<arch>/` | " + " | ".join(f"{by_dir[f'{top}/{a}'] / 1e6:.2f} MB" for a in ARCHS) + " |")
    print("| installed (bin, lib of the architecture + common files) | "
          + " | ".join(f"{(by_dir[f'bin/{a}'] + by_dir[f'lib/{a}'] + by_dir['common']) / 1e6:.2f} MB" for a in ARCHS)
          + " |")
    print(f"\ncommon files: {by_dir['common'] / 1e6:.2f} MB; largest files:")
    for size, rel in sorted(files, reverse=True)[:args.top]:
        print(f"  {size / 1e6:7.2f} MB  {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
