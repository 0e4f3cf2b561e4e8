"""Which C compiler Nuitka (and pip, for sdists) uses inside each build root.

x86_64: the root's own gcc, through the root's ccache.

aarch64 has two routes (SCons variable AARCH64_ROUTE):

* ``emulated`` - the robust one: everything, gcc included, is arm64 code run by
  qemu-user, exactly as on a device. About 4.7 times slower than native.
* ``cross`` (default) - the fast one: Nuitka's Python part still runs on the
  arm64 python3.11 under qemu-user (it must: it inspects the target
  interpreter, its modules and extension modules), but the C compiler is the
  x86_64-hosted aarch64 cross compiler from the x86_64 root, mounted at /x86.
  It is an x86_64 program, so the kernel runs it natively, not through qemu;
  the arm64 root only needs its loader and libraries where it looks for them
  (the /usr/lib/x86_64-linux-gnu and /lib64 links made with the root). It
  compiles against the arm64 root's own headers and libraries (sysroot "/" of
  the chroot: /usr/include, /usr/lib/aarch64-linux-gnu), i.e. exactly what the
  emulated gcc would use, and ccache (also the x86_64 one) caches its output.

Both routes produce aarch64 code for the same Debian 12 userland; the cross
route only changes which machine code executes the compiler.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sysroot.chroot import Bind

ROUTES = ("cross", "emulated")
CROSS_GCC = "/x86/usr/bin/aarch64-linux-gnu-gcc-12"
CROSS_CCACHE = "/x86/usr/bin/ccache"


@dataclass
class Toolchain:
    arch: str
    route: str  # "native", "cross" or "emulated"
    env: dict[str, str] = field(default_factory=dict)
    binds: list[Bind] = field(default_factory=list)

    def describe(self) -> str:
        return {"native": "native gcc", "emulated": "gcc under qemu-user",
                "cross": "x86_64 aarch64-linux-gnu-gcc (native speed) in the arm64 root"}[self.route]


def toolchain(arch: str, x86_root: Path | None, route: str = "cross") -> Toolchain:
    if arch == "x86_64":
        return Toolchain(arch, "native")
    if route not in ROUTES:
        raise ValueError(f"AARCH64_ROUTE must be one of {ROUTES}, not {route!r}")
    if route == "emulated":
        return Toolchain(arch, route, env={"CC": "gcc"})
    if x86_root is None:
        raise ValueError("the cross route needs the x86_64 root (its cross compiler)")
    return Toolchain(arch, route,
                     env={"CC": CROSS_GCC, "NUITKA_CCACHE_BINARY": CROSS_CCACHE},
                     binds=[Bind(x86_root, "/x86")])
