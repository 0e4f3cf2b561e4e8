"""L4Re (Fiasco + user land) for QEMU's arm64 `virt` machine, built from the pinned sources of the mirror.

    python l4re/l4re_build.py        # build (or find) the cached L4Re build; prints the boot image

Sources: $WVDS_SOURCE_MIRROR/l4re (default: ../shared/mirror beside the clone), laid out by the mirror's
own unpack.sh, which checks its SHA256SUMS first. Nothing is downloaded.

What is built (docs/l4re.md): Fiasco from the template arm64-virt-el2 (EL2, as uvmm needs), the L4Re user
land for T=arm64-virt-v8a (every package unpack.sh lays out: l4re-core, bootstrap, hello, and io, uvmm, cons
for the VM of stage 2), and the boot image of the entry `hello` of modules.list (ours, offline: the stock
list fetches guest images). All compiles run under `nice -n 19`: the machine is shared with the test suite.

Cached under $WVDS_CACHE/l4re/<key>/, key = SHA256SUMS + unpack.sh of the mirror + this recipe:
src/ (unpacked), fiasco/ and l4/ (build directories), bootstrap_hello.elf, times.json (seconds per step).
Each step leaves a stamp, so an interrupted build resumes at the step that failed.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

RECIPE_VERSION = "1"  # bump when the steps below change
CROSS_COMPILE = "aarch64-linux-gnu-"
FIASCO_TEMPLATE = "arm64-virt-el2"
USERLAND_TEMPLATE = "arm64-virt-v8a"
MODULES_LIST = HERE / "modules.list"
ENTRY = "hello"
NICE = ["nice", "-n", "19"]
# Variables of the calling environment that would change what the L4Re makefiles compile.
_FOREIGN_ENV = ("CC", "CXX", "CPP", "LD", "AR", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "MAKEFLAGS",
                "CROSS_COMPILE", "ARCH", "O", "B", "T", "E", "S")


def mirror() -> Path:
    base = os.environ.get("WVDS_SOURCE_MIRROR") or str(ROOT.parent / "shared" / "mirror")
    return Path(base) / "l4re"


def cache_dir() -> Path:
    return Path(os.environ.get("WVDS_CACHE", Path.home() / ".cache" / "wvds")) / "l4re"


def key() -> str:
    m = mirror()
    if not (m / "SHA256SUMS").is_file():
        raise FileNotFoundError(f"no L4Re sources at {m}: set WVDS_SOURCE_MIRROR to the source mirror "
                                "(.ci/run sets it to ../shared/mirror)")
    h = hashlib.sha256()
    for part in ((m / "SHA256SUMS").read_bytes(), (m / "unpack.sh").read_bytes(), RECIPE_VERSION.encode(),
                 CROSS_COMPILE.encode(), FIASCO_TEMPLATE.encode(), USERLAND_TEMPLATE.encode(),
                 MODULES_LIST.read_bytes(), ENTRY.encode()):
        h.update(part + b"\0")
    return h.hexdigest()[:16]


def image_name() -> str:
    return f"bootstrap_{ENTRY}.elf"


def cached_image() -> Path | None:
    """The boot image if this key() has been built, else None (never builds)."""
    out = cache_dir() / key()
    return out / image_name() if (out / ".complete").exists() else None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env["LC_ALL"] = "C"
    return env


def run_logged(cmd: list[str], log, label: str, cwd: Path | None = None) -> None:
    """Runs cmd with its output in the log, and a line a minute on stdout so a long build is visibly alive."""
    print(f"[l4re] {label}: {' '.join(cmd)}", file=log, flush=True)
    started = last = time.monotonic()
    line = ""
    with subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as proc:
        for line in proc.stdout:
            log.write(line)
            if time.monotonic() - last >= 60:
                last = time.monotonic()
                print(f"[l4re] {label}, {int(last - started) // 60} min: {line.strip()[:110]}", flush=True)
    log.flush()
    if proc.returncode:
        raise RuntimeError(f"{label} failed (exit {proc.returncode}): {line.strip()[:200]}")


def _step(out: Path, name: str, times: dict, log, work) -> None:
    """work() once per key: skipped when its stamp exists; its duration goes into times.json."""
    stamp = out / f".{name}-done"
    if stamp.exists():
        return
    print(f"[l4re] {name} ...", flush=True)
    started = time.monotonic()
    work()
    times[name] = round(time.monotonic() - started, 1)
    (out / "times.json").write_text(json.dumps(times, indent=1) + "\n")
    stamp.touch()
    print(f"[l4re] {name} done in {times[name]:.0f} s", flush=True)


def ensure_image(log=None) -> Path:
    """The boot image of ENTRY (Fiasco + sigma0 + moe + l4re + hello), built once per key()."""
    log = log or sys.stderr
    out = cache_dir() / key()
    image = out / image_name()
    out.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per cache at a time
        if (out / ".complete").exists():
            return image
        times_file = out / "times.json"
        times = json.loads(times_file.read_text()) if times_file.exists() else {}
        times["niceness"] = 19
        times["jobs"] = os.cpu_count() or 1
        src, fiasco, l4 = out / "src", out / "fiasco", out / "l4"
        jobs = f"-j{times['jobs']}"

        def unpack():
            shutil.rmtree(src, ignore_errors=True)
            run_logged(["sh", str(mirror() / "unpack.sh"), str(src)], log, "unpack")

        def build_fiasco():
            shutil.rmtree(fiasco, ignore_errors=True)
            run_logged(["make", f"B={fiasco}", f"T={FIASCO_TEMPLATE}"], log, "fiasco config", cwd=src / "fiasco")
            run_logged(NICE + ["make", "-C", str(fiasco), jobs, f"CROSS_COMPILE={CROSS_COMPILE}"], log, "fiasco")

        def build_userland():
            if not (l4 / "Makefile").exists():  # else resume the interrupted build (make is incremental)
                shutil.rmtree(l4, ignore_errors=True)
                run_logged(["make", f"B={l4}", f"T={USERLAND_TEMPLATE}"], log, "userland config", cwd=src / "l4")
            run_logged(NICE + ["make", "-C", str(l4), jobs, f"CROSS_COMPILE={CROSS_COMPILE}"], log, "userland")

        def boot_image():
            run_logged(NICE + ["make", "-C", str(l4), "elfimage", f"E={ENTRY}", f"MODULES_LIST={MODULES_LIST}",
                               f"MODULE_SEARCH_PATH={fiasco}", f"CROSS_COMPILE={CROSS_COMPILE}"], log, "image")
            shutil.copyfile(l4 / "images" / image_name(), image)

        _step(out, "unpack", times, log, unpack)
        _step(out, "fiasco", times, log, build_fiasco)
        _step(out, "userland", times, log, build_userland)
        _step(out, "image", times, log, boot_image)
        (out / ".complete").touch()
    for old in out.parent.iterdir():  # builds of earlier sources or recipes (about 1 GB each)
        if old.is_dir() and old != out:
            shutil.rmtree(old, ignore_errors=True)
    return image


def build_times() -> dict:
    """Seconds per step of the cached build (times.json), {} if there is none."""
    f = cache_dir() / key() / "times.json"
    return json.loads(f.read_text()) if f.exists() else {}


if __name__ == "__main__":
    path = ensure_image()
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB); build times: {build_times()}")
