"""The delivery tarball: layout, checksums, reproducibility, the documents rendered for what is inside."""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import stat
import subprocess
import tarfile

import pytest

from packaging_support import build_delivery, tar_members
from support.targets import BUILD, ROOT
from wvds.programs import MULTICALL, PROGRAMS

ARCHS = ("x86_64", "aarch64")
PER_ARCH = ("bin/{a}/openssl", "lib/{a}/libl4re_crypto_service.so", "lib/{a}/libcrypto.so.3", "lib/{a}/libssl.so.3",
            "lib/{a}/fips.so")
COMMON = ("install.sh", "README_OEM.md", "WvdS_KB_OEM.md", "include/wvds_crypto.h", "examples/oem_gateway.c",
          "examples/Makefile", "examples/hardening.mk", "scripts/extract_certs.py", "config/crypto_service.json",
          "config/est_service.json",
          "systemd/wvds-crypto.service", "systemd/wvds-est.service", "SHA256SUMS", "VERSION",
          "licenses/OpenSSL-LICENSE.txt", "certs/README.md")
CERTS = [f"{d}{n}.{e}" for d in ("", "ecdsa/") for n in ("root_ca", "service_cert", "client_cert") for e in ("pem", "der")]


def names(delivery) -> dict[str, tarfile.TarInfo]:
    top = delivery.top + "/"
    return {m.name[len(top):]: m for m in tar_members(delivery.tarball) if m.name.startswith(top)}


def test_layout_of_the_original_product_and_more(delivery):
    members = names(delivery)
    expected = [p.format(a=a) for a in ARCHS for p in PER_ARCH] + list(COMMON) + [f"certs/{c}" for c in CERTS]
    missing = [p for p in expected if p not in members]
    assert not missing, f"missing from the delivery: {missing}"
    assert f"sbom/wvds-crypto-svc-{delivery.version}.cdx.json" in members
    # the FIPS module configuration is made on the device, never shipped
    assert not [n for n in members if n.endswith("fipsmodule.cnf")]
    assert delivery.tarball.name == f"wvds-crypto-svc-{delivery.version}-oem-delivery.tar.gz"
    assert all(m.name.startswith(delivery.top) for m in tar_members(delivery.tarball))


def test_optional_parts_follow_the_build(delivery):
    """Daemons and provider are in the tarball exactly when their build outputs exist."""
    members = names(delivery)
    for arch in ARCHS:
        daemons = [f"bin/{arch}/{p}" for p in (MULTICALL, *PROGRAMS)]
        assert all(d in members for d in daemons) == delivery.has_binaries(arch)
        # the service's own library comes with the programs, never beside the OEM's library
        assert (f"bin/{arch}/libwvds_service.so" in members) == delivery.has_binaries(arch)
        assert f"lib/{arch}/libwvds_service.so" not in members
        if delivery.has_binaries(arch):
            assert all(members[d].issym() and members[d].linkname == MULTICALL for d in daemons[1:])
            for lib in ("libcrypto.so.3", "libssl.so.3"):  # one OpenSSL per architecture, linked
                assert members[f"bin/{arch}/{lib}"].linkname == f"../../lib/{arch}/{lib}"
        has_provider = (BUILD / arch / "provider" / "wvds.so").exists()
        assert (f"lib/{arch}/wvds.so" in members) == has_provider
        assert (f"bin/{arch}/wvds-keyref" in members) == has_provider


def test_members_are_normalised(delivery):
    with open(delivery.tarball, "rb") as f:
        head = f.read(10)
    assert head[:3] == b"\x1f\x8b\x08" and head[3] == 0, "gzip header must carry no name"
    assert head[4:8] == b"\0\0\0\0", "gzip header must carry no timestamp"
    members = tar_members(delivery.tarball)
    epoch = members[0].mtime
    assert [m.name for m in members] == sorted(m.name for m in members if m.isdir()) + \
        sorted(m.name for m in members if not m.isdir()), "directories first, then files, each sorted"
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), m.name
        assert m.mtime == epoch, m.name
        assert m.isdir() or m.isfile() or m.issym(), m.name
        if m.isfile():
            assert m.mode in (0o644, 0o755), (m.name, oct(m.mode))
    git = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True)
    if git.returncode == 0 and not os.environ.get("SOURCE_DATE_EPOCH"):
        assert epoch == int(git.stdout), "the mtime is the commit's time"


def test_executables_and_shebangs(delivery):
    members = names(delivery)
    for name in ("install.sh", "scripts/extract_certs.py", *(f"bin/{a}/openssl" for a in ARCHS)):
        assert members[name].mode == 0o755, name
    for name in ("README_OEM.md", "config/crypto_service.json", "certs/root_ca.pem"):
        assert members[name].mode == 0o644, name


def test_readme_states_the_sizes_of_what_it_ships(unpacked):
    """README_OEM's contents table gives each architecture's bin/ and lib/ size: they are the real ones."""
    readme = (unpacked / "README_OEM.md").read_text()
    for top in ("bin", "lib"):
        row = next(line for line in readme.splitlines() if line.startswith(f"| size of `{top}/<arch>/`"))
        stated = [c.strip() for c in row.strip("|").split("|")[1:]]
        for arch, cell in zip(ARCHS, stated):
            files = [p for p in (unpacked / top / arch).rglob("*") if p.is_file() and not p.is_symlink()]
            real = sum(p.stat().st_size for p in files)
            assert cell == f"{real / 1e6:.1f} MB", (top, arch, cell, real)
    assert "| installed on the device" in readme


def test_sha256sums_cover_every_file(unpacked):
    listed = {}
    for line in (unpacked / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file() or p.is_symlink()}
    assert present - {"SHA256SUMS"} == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((unpacked / name).read_bytes()).hexdigest() == digest, name
    r = subprocess.run(["sha256sum", "--strict", "--quiet", "-c", "SHA256SUMS"], cwd=unpacked, capture_output=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_delivered_openssl_uses_the_delivered_libcrypto(unpacked, host_arch):
    """bin/<arch>/openssl finds lib/<arch>/ itself (not the system's OpenSSL 3.0)."""
    binary = unpacked / "bin" / host_arch / "openssl"
    out = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    assert f"[$ORIGIN/../../lib/{host_arch}]" in out
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSSL_", "LD_"))}
    r = subprocess.run([str(binary), "version"], capture_output=True, text=True, env=env, check=True)
    assert re.match(r"OpenSSL 3\.6\.\d+ .*\(Library: OpenSSL 3\.6\.", r.stdout), r.stdout


def test_documents_describe_what_is_shipped(delivery, unpacked):
    readme = (unpacked / "README_OEM.md").read_text()
    kb = (unpacked / "WvdS_KB_OEM.md").read_text()
    for text in (readme, kb):
        assert "<!--" not in text and "@VERSION@" not in text, "template markers left in a delivered document"
        assert text.startswith(f"# WvdS Crypto Service {delivery.version} ")
        assert "| daemons `wvds_crypto_service`" in text  # the contents table
    all_bins = all(delivery.has_binaries(a) for a in ARCHS)
    no_bins = not any(delivery.has_binaries(a) for a in ARCHS)
    assert ("First encrypted and signed message" in readme) == all_bins
    assert ("No daemons in this delivery" in readme) == no_bins
    assert ("This delivery contains no daemon binaries" in kb) == no_bins
    if no_bins:
        assert "bin/<arch>/wvds_crypto_service" not in readme
    for arch in ARCHS:
        row = re.search(r"\| daemons .*\|\n", readme).group(0)
        assert ("not in this delivery" in row) == (not all_bins)
    # the KB refers to nothing outside the tarball: no links, no repository paths
    for text in (readme, kb):
        assert not re.search(r"\]\((?!#)[^)]+\)", text), "links to outside documents"
        assert "docs/" not in text and "src/wvds" not in text and "tests/" not in text


def test_kb_covers_every_status_code_and_config_field(unpacked):
    kb = (unpacked / "WvdS_KB_OEM.md").read_text()
    import sys
    sys.path.insert(0, str(ROOT / "src"))
    from wvds.crypto_service.config import Config
    from wvds.protocol.constants import Status
    for status in Status:
        assert f"`{status.name}` (0x{status.value:02X})" in kb, status.name
    for err in ("WVDS_ERR_CONNECT", "WVDS_ERR_REFUSED", "WVDS_ERR_TIMEOUT", "WVDS_ERR_PROTOCOL",
                "WVDS_ERR_BUFFER_TOO_SMALL", "WVDS_ERR_ARGUMENT", "WVDS_ERR_DISCONNECTED", "WVDS_ERR_SYSTEM"):
        assert f"| `{err}` |" in kb, err
    fields = ["socket.path", "socket.mode", "access.allow_uids", "grants[]", "limits.max_clients",
              "limits.slots_per_client", "limits.workers", "limits.max_keys_per_client",
              "limits.gcm_invocation_limit", "limits.replay_window", "limits.replay_streams", "limits.replay_sync",
              "limits.legacy_replay_window", "limits.spin_us",
              "limits.rate_limit.requests_per_second", "limits.rate_limit.burst", "limits.rate_limit.cooldown_ms",
              "openssl.config", "openssl.modules", "keystore", "log.level", "channels[]"]
    for f in fields:
        assert f"| `{f}`" in kb, f
    assert len(Config.__dataclass_fields__) == 22, "crypto_service config changed: update the KB's table"
    for backend in ("`file`", "`tpm`", "`pkcs11`", "`memory`"):
        assert f"| {backend}" in kb


@pytest.mark.slow
def test_reproducible_with_another_umask_time_zone_and_directory(delivery, tmp_path):
    """Two builds of the same tree are byte-identical, whatever the builder's umask, TZ, locale and cwd."""
    out = tmp_path / "second"
    out.mkdir()
    env = dict(os.environ, TZ="Pacific/Kiritimati", LC_ALL="C.UTF-8", LANG="de_DE.UTF-8", PWD=str(tmp_path),
               WVDS_TEST_UMASK="077")
    second = build_delivery(out, env)
    assert second.tarball != delivery.tarball
    a, b = delivery.tarball.read_bytes(), second.tarball.read_bytes()
    if a != b:  # say which member differs
        ma = {m.name: m for m in tar_members(delivery.tarball)}
        mb = {m.name: m for m in tar_members(second.tarball)}
        diff = sorted(n for n in set(ma) | set(mb) if n not in ma or n not in mb
                      or (ma[n].size, ma[n].mode, ma[n].mtime) != (mb[n].size, mb[n].mode, mb[n].mtime))
        pytest.fail(f"two builds differ; members: {diff[:10] or 'same metadata, different bytes'}")
    assert stat.S_IMODE(second.tarball.stat().st_mode) == 0o600  # only the file's own mode follows the umask
    sums = [p.with_name(p.name + ".sha256").read_text().split()[0] for p in (delivery.tarball, second.tarball)]
    assert sums[0] == sums[1] == hashlib.sha256(a).hexdigest()


def test_gzip_stream_is_plain(delivery):
    with gzip.open(delivery.tarball) as f:
        assert tarfile.open(fileobj=f, mode="r|").next() is not None


def test_no_member_records_the_clone_path(delivery):
    """Reproducible from any path: no file of the delivery carries the directory it was built in
    (DWARF's comp_dir, __FILE__, ...). scripts/check-reproducible builds a second clone and compares."""
    clone = str(ROOT).encode()
    with tarfile.open(delivery.tarball) as tar:
        offenders = [m.name for m in tar.getmembers() if m.isfile() and clone in tar.extractfile(m).read()]
    assert not offenders, f"these members contain {ROOT}: {offenders}"
