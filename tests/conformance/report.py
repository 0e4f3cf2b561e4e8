"""Print the counts table of docs/conformance.md from build/conformance/<label>.json (written by the tests).

    python tests/conformance/report.py
"""
from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "build" / "conformance"
LABELS = ("source", "x86_64-binary", "aarch64-binary")


def main() -> None:
    counts = {label: json.loads((OUT / f"{label}.json").read_text()) if (OUT / f"{label}.json").exists() else {}
              for label in LABELS}
    checks = sorted({c for v in counts.values() for c in v})
    print("| check | source | x86_64 binary | aarch64 binary |")
    print("|---|---|---|---|")
    for check in checks:
        print(f"| {check} | " + " | ".join(str(counts[label].get(check, "-")) for label in LABELS) + " |")
    print("| **total** | " + " | ".join(f"**{sum(counts[label].values())}**" for label in LABELS) + " |")


if __name__ == "__main__":
    main()
