"""Hardware-in-the-loop smoke test of the OEM delivery on an aarch64 machine: QEMU.

    python qemu/run_smoke.py [dist/wvds-crypto-svc-<version>-oem-delivery.tar.gz] [--out build/qemu] [--l4re]

1. The guest (qemu/guest_image.py): Debian 12 arm64 with systemd and Debian's kernel, cached.
2. The payload, a tar archive the guest reads from its second disk: the delivery tarball as the
   OEM receives it, qemu/smoke.sh, the example gateway cross-compiled against the delivery
   with the delivery's own Makefile, and the EST settings for the test EST server.
3. The test EST server (tests/support/est_server.py) on the host's loopback. The guest has a
   QEMU user-mode network with restrict=on - no route to the host or anywhere - and a single
   guestfwd: est.wvds.test:8443 (10.0.2.100) is connected to the server's port.
4. `qemu-system-aarch64 -machine virt` (TCG), no display, the root image with -snapshot (never
   written), serial console to <out>/console.log, results on a virtio-serial port to
   <out>/results.jsonl; a hard timeout kills a guest that hangs. With --l4re the same guest runs in
   a VM under Fiasco + uvmm (l4re/vm_image.py, docs/l4re.md), its devices on virtio-mmio.
5. <out>/results.json: every step with pass/fail and seconds, boot and total time. Exit status
   0 only if every step passed; otherwise the console log's end is printed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "l4re"), str(ROOT / "tests"), str(ROOT / "src")]
import guest_image  # noqa: E402
import vm_image  # noqa: E402  (l4re/vm_image.py)
from support.est import EstServer  # noqa: E402  (tests/support/est_server.py as a process)

STEPS = ("boot", "install", "fips_provider", "crypto_service", "wvdsctl_status", "gateway", "est_enroll",
         "restart_keeps_keys")
L4RE_STEPS = ("l4re_channel",)  # only in the VM under uvmm: the native gateway task's channel (docs/l4re.md)


def expected_steps(l4re: bool) -> tuple[str, ...]:
    return STEPS + L4RE_STEPS if l4re else STEPS


GUEST_EST = ("10.0.2.100", 8443)  # est.wvds.test in the guest's /etc/hosts


def default_tarball() -> Path:
    version = {}
    exec((ROOT / "src" / "wvds" / "version.py").read_text(), version)
    return ROOT / "dist" / f"wvds-crypto-svc-{version['VERSION']}-oem-delivery.tar.gz"


def unpack(tarball: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(dest)], check=True)
    (top,) = dest.iterdir()
    return top


def build_gateway(delivery: Path, out: Path) -> Path:
    """The example, cross-compiled as the OEM would: the delivery's Makefile, header and library."""
    work = out / "gateway"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(delivery / "examples", work)
    subprocess.run(["make", "-s", "-C", str(work), f"DELIVERY={delivery}", "ARCH=aarch64",
                    "CC=aarch64-linux-gnu-gcc", "RPATH=/opt/wvds/current/lib/aarch64"], check=True)
    return work / "oem_gateway"


def est_settings(delivery: Path, est: EstServer, dest: Path) -> None:
    """est_service.json completed as WvdS_KB_OEM.md says: server URL, trust anchor, bootstrap credentials."""
    dest.mkdir(parents=True)
    shutil.copy(est.root_pem, dest / "trust-anchor.pem")
    (dest / "bootstrap.pw").write_text("est-pass\n")
    cfg = json.loads((delivery / "config" / "est_service.json").read_text())
    server = cfg["servers"]["factory"]
    server["url"] = f"https://est.wvds.test:{GUEST_EST[1]}"
    server["auth"]["bootstrap"]["username"] = "est"
    (dest / "est_service.json").write_text(json.dumps(cfg, indent=2) + "\n")


def make_payload(tarball: Path, out: Path, est: EstServer) -> Path:
    delivery = unpack(tarball, out / "unpacked")
    stage = out / "payload"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    shutil.copy(tarball, stage / tarball.name)
    shutil.copy(HERE / "smoke.sh", stage / "smoke.sh")
    shutil.copy(build_gateway(delivery, out), stage / "oem_gateway")
    est_settings(delivery, est, stage / "est")
    payload = out / "payload.tar"
    with tarfile.open(payload, "w", format=tarfile.GNU_FORMAT) as tf:
        for p in sorted(stage.iterdir()):
            tf.add(p, arcname=p.name)
    return payload


def qemu_command(guest: dict[str, Path], payload: Path, out: Path, est_port: int,
                 l4re_image: Path | None = None) -> list[str]:
    """Linux straight on QEMU's virt machine, its devices on PCI; or, with l4re_image (l4re/vm_image.py),
    Fiasco + uvmm with the same guest in a VM: EL2 for the hypervisor, and the same four devices on
    virtio-mmio transports, which io passes through to the VM (l4re/vm/wvds-vm.io: QEMU gives the first
    -device the highest transport, so their order here is the order the VM's device tree expects)."""
    if l4re_image is None:
        machine = ["-machine", "virt", "-cpu", "cortex-a72", "-m", "2048", "-kernel", str(guest["kernel"]),
                   "-initrd", str(guest["initrd"]), "-append", guest_image.KERNEL_CMDLINE]
        bus, nic_rom = "pci", ",romfile="  # no PXE option ROM: direct kernel boot
    else:  # 2 GiB for the VM (l4re/vm/wvds-vm.ned), the rest for Fiasco and the L4Re tasks
        machine = ["-machine", "virt,virtualization=true", "-cpu", "cortex-a57", "-m", "3072",
                   "-kernel", str(l4re_image)]
        bus, nic_rom = "device", ""
    # cmd: QEMU starts the relay for every connection the guest opens (a tcp: chardev would carry one only)
    guestfwd = f"guestfwd=tcp:{GUEST_EST[0]}:{GUEST_EST[1]}-cmd:socat STDIO TCP:127.0.0.1:{est_port}"
    return [
        "qemu-system-aarch64", *machine, "-smp", "2",
        "-display", "none", "-monitor", "none", "-no-reboot",
        "-serial", f"file:{out / 'console.log'}",
        "-drive", f"if=none,id=root,format=raw,snapshot=on,file={guest['rootfs']}",
        "-device", f"virtio-blk-{bus},drive=root",
        "-drive", f"if=none,id=payload,format=raw,readonly=on,file={payload}",
        "-device", f"virtio-blk-{bus},drive=payload,serial=wvds-payload",
        "-netdev", f"user,id=net0,restrict=on,{guestfwd}", "-device", f"virtio-net-{bus},netdev=net0{nic_rom}",
        "-device", f"virtio-serial-{bus}", "-chardev", f"file,id=results,path={out / 'results.jsonl'}",
        "-device", "virtserialport,chardev=results,name=wvds.results",
    ]


# Console lines after which an L4Re system will do nothing more: the guest powered off (that ends only
# uvmm, Fiasco runs on), or uvmm died.
L4RE_END = (b"reboot: Power down", b"VMM: FATAL", b"terminate called")


def wait_for_power_off(proc: subprocess.Popen, console: Path | None, timeout: float) -> tuple[bool, str]:
    """(True, "") when QEMU ended within timeout. On QEMU the guest's power-off ends QEMU; under L4Re
    (console given) a line of L4RE_END on the console ends QEMU, and an error says which if it was not
    the power-off."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return False, ""
        tail = console.read_bytes()[-4096:] if console and console.exists() else b""
        end = next((e for e in L4RE_END if e in tail), None)
        if end:
            time.sleep(1)  # the last lines of the console
            proc.terminate()
            proc.wait()
            return True, "" if end == L4RE_END[0] else f"under L4Re: {end.decode()} (see the console)"
        time.sleep(0.5)
    return True, ""


def run(tarball: Path, out: Path, timeout: float = 900, log=sys.stderr, build_guest: bool = True,
        l4re: bool = False) -> dict:
    """Boot, smoke-test, power off; the results (also written to <out>/results.json). With
    build_guest=False a guest that is not cached is an error, not a 20-minute build. With l4re the
    guest runs in a VM under Fiasco + uvmm (docs/l4re.md); the L4Re build must exist (scons l4re)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("console.log", "results.jsonl", "results.json", "qemu.stderr"):
        (out / name).unlink(missing_ok=True)
    started = time.monotonic()
    guest = guest_image.ensure_guest(log) if build_guest else guest_image.cached_guest()
    if guest is None:
        raise RuntimeError("the QEMU guest is not built: run 'scons qemu-guest' (./run test does, as root)")
    l4re_image = vm_image.ensure_vm_image(guest, log) if l4re else None
    prepared = time.monotonic()
    est = EstServer(out / "est-server").start()
    try:
        payload = make_payload(tarball, out, est)
        cmd = qemu_command(guest, payload, out, est.port, l4re_image)
        booted = time.monotonic()
        stderr = out / "qemu.stderr"
        with open(stderr, "w") as err, subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                        stderr=err) as proc:
            powered_off, l4re_error = wait_for_power_off(proc, out / "console.log" if l4re_image else None, timeout)
            if not powered_off:
                proc.kill()
        timed_out = not powered_off
        if timed_out:
            qemu_error = f"no power-off within {timeout:.0f} s: the guest was killed"
        else:
            qemu_error = l4re_error or (stderr.read_text().strip() if proc.returncode and not l4re_image else "")
        ended = time.monotonic()
    finally:
        est.stop()
    lines = (out / "results.jsonl").read_text(errors="replace").splitlines() if (out / "results.jsonl").exists() else []
    reports = []
    for line in lines:
        try:
            reports.append(json.loads(line))
        except ValueError:
            reports.append({"step": "?", "ok": False, "detail": f"unreadable result line: {line[:200]}"})
    steps = [r for r in reports if "step" in r]
    done = next((r for r in reports if r.get("done")), None)
    seen = {s["step"] for s in steps}
    missing = [s for s in expected_steps(l4re_image is not None) if s not in seen]
    boot = next((s for s in steps if s["step"] == "boot"), None)
    result = {
        "tarball": tarball.name,
        "passed": bool(done) and not missing and all(s["ok"] for s in steps) and not timed_out,
        "steps": steps,
        "missing_steps": missing,
        "guest_uptime_at_smoke_start_s": _uptime(boot),
        "guest_uptime_at_end_s": done.get("uptime") if done else None,
        "platform": "l4re-uvmm" if l4re_image else "qemu",
        "qemu_wall_s": round(ended - booted, 1),
        "guest_image_s": round(prepared - started, 1),
        "total_s": round(ended - started, 1),
        "timed_out": timed_out,
        "qemu_error": qemu_error,
        "command": cmd,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _uptime(boot: dict | None) -> float | None:
    if not boot:
        return None
    words = boot.get("detail", "").split()
    try:
        return float(words[words.index("up") + 1])
    except (ValueError, IndexError):
        return None


def console_tail(out: Path, lines: int = 80) -> str:
    path = out / "console.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no console log)"


def summary(result: dict) -> str:
    rows = [f"{'step':<20} {'result':<6} {'seconds':>8}"]
    for s in result["steps"]:
        rows.append(f"{s['step']:<20} {'pass' if s['ok'] else 'FAIL':<6} {s.get('seconds', 0):>8.1f}")
    for name in result["missing_steps"]:
        rows.append(f"{name:<20} {'none':<6} {'-':>8}")
    rows.append(f"guest up when the smoke test started: {result['guest_uptime_at_smoke_start_s']} s; "
                f"QEMU run {result['qemu_wall_s']} s; total {result['total_s']} s")
    rows.append("PASSED" if result["passed"] else "FAILED" + (f": {result['qemu_error']}" if result["qemu_error"] else ""))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tarball", nargs="?", type=Path, default=default_tarball())
    ap.add_argument("--out", type=Path, help="results directory (default build/qemu, with --l4re build/l4re-vm)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds before the guest is killed")
    ap.add_argument("--l4re", action="store_true",
                    help="run the guest in a VM under Fiasco + uvmm (docs/l4re.md; needs `scons l4re`)")
    args = ap.parse_args(argv)
    args.out = args.out or ROOT / "build" / ("l4re-vm" if args.l4re else "qemu")
    if not args.tarball.exists():
        ap.error(f"{args.tarball} does not exist: build it first (./run dist)")
    result = run(args.tarball.resolve(), args.out.resolve(), args.timeout, l4re=args.l4re)
    print(summary(result))
    if not result["passed"]:
        for s in result["steps"]:
            if not s["ok"]:
                print(f"\n--- {s['step']} ---\n{s.get('detail', '')}")
        print("\n--- end of the guest console ---\n" + console_tail(args.out))
    print(f"results: {args.out / 'results.json'}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
