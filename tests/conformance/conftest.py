"""Conformance tests: the service against implementations from other code bases (docs/conformance.md).

Run against the service from source and against both architectures' binaries (the `binaries` marker of
test_liboqs.py; the service fixtures are in tests/conftest.py). Every check is counted; the counts of a
session are written to build/conformance/<label>.json (source, x86_64-binary, aarch64-binary) for docs/conformance.md.
"""
from __future__ import annotations

import collections
import json

import pytest

from support.targets import ROOT


@pytest.fixture(scope="session")
def conformance_counts():
    """Agreeing cases per (label, check) of this session; written to build/conformance/<label>.json at its end."""
    counts: collections.Counter = collections.Counter()
    yield counts
    by_label: dict[str, dict[str, int]] = collections.defaultdict(dict)
    for (label, check), n in sorted(counts.items()):
        by_label[label][check] = n
    out = ROOT / "build" / "conformance"
    out.mkdir(parents=True, exist_ok=True)
    for label, checks in by_label.items():
        (out / f"{label}.json").write_text(json.dumps(checks, indent=2) + "\n")


@pytest.fixture
def tally(conformance_counts, programs):
    """tally(check, n=1): count n agreeing cases of `check` for this run's label (source, <arch>-binary)."""
    label = programs.name

    def add(check: str, n: int = 1) -> None:
        conformance_counts[(label, check)] += n
    return add
