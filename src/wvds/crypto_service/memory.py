"""After start-up: give the kernel back the clean file pages only the start-up used.

A compiled service's start-up reads its whole program file once: Nuitka walks the constants
blob (a header per module), and the kernel's fault-around maps the pages around each page
touched, so most of the program, and the FIPS self-tests' code in fips.so and libcrypto,
stay mapped and count in the RSS although nothing touches them again (docs/performance.md,
"Memory"). madvise(MADV_PAGEOUT) (Linux 5.4) on the process's read-only file mappings asks
the kernel to reclaim them now instead of under memory pressure: a clean file page is
unmapped (and leaves the page cache if no other process maps it), and is read back from the
file on its next access. Nothing is lost - pages a relocation made private are anonymous
memory, which the kernel keeps without swap - and writable mappings (data, heap, the clients'
shared memory) are not touched. The RSS afterwards is what the service really uses.
"""
from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("wvds.memory")
MADV_PAGEOUT = 21


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def read_only_file_mappings() -> list[tuple[int, int]]:
    """(start, length) of every mapping of a file that the process cannot write."""
    out = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or "w" in fields[1] or fields[4] == "0" or not fields[5].startswith("/"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            out.append((start, end - start))
    return out


def release_startup_pages() -> None:
    """Ask the kernel to reclaim the read-only file pages mapped now; logs the RSS before and after.
    Only an optimisation: without /proc or madvise it logs why and the service runs on as it is."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.argtypes, madvise.restype = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int), ctypes.c_int
        before, refused = rss_kib(), 0
        for start, length in read_only_file_mappings():
            if madvise(start, length, MADV_PAGEOUT) != 0:  # EINVAL before Linux 5.4: nothing to do
                refused += 1
        after = rss_kib()
    except (OSError, AttributeError, StopIteration, ValueError) as e:
        log.warning("start-up pages not released", extra={"reason": repr(e)})
        return
    log.info("start-up pages released", extra={"rss_kib_before": before, "rss_kib_after": after,
                                               "mappings_refused": refused})
