"""Run a command inside a cached build root without changing it.

The roots under $WVDS_CACHE are shared by every clone on the machine (and by CI
runs), so a build must not write into them. Each command runs in its own mount
namespace (`unshare --mount`): the root is bind-mounted read-only onto itself,
/proc, /dev and a private /tmp are mounted in, and only the directories the
caller names (sources read-only, output and caches read-write) are bound into
it. When the command ends the namespace goes away with every mount in it:
there is nothing to unmount, even after a crash or a kill.

aarch64 roots run their programs through qemu-user via binfmt_misc; with the
"F" flag (Debian's registration) the kernel holds the emulator open, so none
needs to be inside the root.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Mount points that every root has (made when the root is created; see debian_root.py).
MOUNT_POINTS = ("/wvds/src", "/wvds/tools", "/wvds/site", "/wvds/out", "/wvds/cache", "/wvds/wheels", "/x86")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Bind:
    host: Path
    guest: str  # one of MOUNT_POINTS (or below an earlier bind)
    writable: bool = False


def _script(root: Path, binds: list[Bind], writable_root: bool) -> str:
    r = shlex.quote(str(root))
    lines = ["set -eu", f"mount --bind {r} {r}"]
    if not writable_root:
        lines.append(f"mount -o remount,bind,ro {r}")
    lines += [f"mount -t proc proc {r}/proc",
              f"mount --rbind /dev {r}/dev",
              f"mount -t tmpfs -o mode=1777 tmpfs {r}/tmp"]
    for b in binds:
        target = shlex.quote(str(root) + b.guest)
        lines.append(f"mount --bind {shlex.quote(str(b.host))} {target}")
        if not b.writable:
            lines.append(f"mount -o remount,bind,ro {target}")
    lines.append(f'exec chroot {r} "$@"')
    return "\n".join(lines)


def command(root: Path, argv: list[str], *, binds: list[Bind] = (), env: dict[str, str] | None = None,
            cwd: str = "/", writable_root: bool = False) -> list[str]:
    """The host command line that runs argv inside root (environment replaced by env)."""
    full_env = {"PATH": PATH, "HOME": "/tmp", "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
    full_env.update(env or {})
    inner = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in full_env.items()),
             "/bin/sh", "-c", f"cd {shlex.quote(cwd)} && exec \"$@\"", "sh", *argv]
    return ["unshare", "--mount", "--propagation", "private",
            "/bin/sh", "-c", _script(root, list(binds), writable_root), "chroot-run", *inner]


def run(root: Path, argv: list[str], *, log=None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run argv in root; output goes to log (a file object, each line stamped with the seconds since the
    start, to see where a build spends its time) if given, else is captured."""
    cmd = command(root, argv, **kw)
    if log is not None:
        log.write(f"$ [{root.name}] {' '.join(map(shlex.quote, argv))}\n")
        log.flush()
        started = time.monotonic()
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_host_env(),
                              text=True, errors="replace") as p:
            for line in p.stdout:
                log.write(f"[{time.monotonic() - started:7.1f}s] {line}")
                log.flush()
        r = subprocess.CompletedProcess(cmd, p.returncode)
    else:
        r = subprocess.run(cmd, capture_output=True, text=True, env=_host_env())
    if check and r.returncode:
        detail = "" if log is not None else f"\n{r.stdout}{r.stderr}"
        raise RuntimeError(f"command failed ({r.returncode}) in {root}: {' '.join(argv)}{detail}")
    return r


def _host_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", PATH), "LANG": "C.UTF-8"}
