"""The delivery's bill of materials (CycloneDX 1.6, JSON) and the license texts that go with it.

Listed, each with version, license, package URL and where it sits in the tarball
(`evidence.occurrences`):

* OpenSSL 3.6.3 (libcrypto, libssl, the openssl tool) and its FIPS provider,
  from recipes/openssl/conandata.yml (version, source sha256, license);
* our own parts: the C client library, the OpenSSL provider, the daemons;
* when the native daemons are in the delivery: CPython (Debian 12's python3.11),
  Nuitka (its runtime is compiled in), every Python package compiled in (from the
  site directory the binaries were built with, packaging/sysroot/python_site.py;
  SBOMs that packages carry themselves, like cryptography's, are nested), and every
  Debian runtime library bundled beside the program (mapped to its package through
  the build root's dpkg database, packaging/sysroot/debian_root.py).

Deterministic: no wall-clock time (the timestamp is the commit's), the serial
number is a name-based UUID over the content, every list is sorted.
"""
from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from wvds.programs import MULTICALL, PROGRAMS  # delivery.py puts src/ on sys.path

SPEC_VERSION = "1.6"
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
SUPPLIER = {"name": "WvdS"}
EXTENSION = re.compile(r"\.(cpython-\d+-[a-z0-9_]+-linux-gnu|abi3)\.so$")
UUID_NAMESPACE = uuid.UUID("5d0c0f8e-3f4b-5c3e-9a57-7776647331a0")  # fixed: serial numbers are uuid5 in it


# --- inputs ---------------------------------------------------------------------------------------------

def conandata(root: Path) -> dict:
    """Version, sha256, URLs and license of the OpenSSL source (a tiny reader for this one YAML file)."""
    text = (root / "recipes" / "openssl" / "conandata.yml").read_text()
    version = re.search(r'^\s+"(\d+\.\d+\.\d+)":\s*$', text, re.M).group(1)
    field = lambda key: re.search(rf'^\s+{key}:\s*"([^"]*)"', text, re.M).group(1)  # noqa: E731
    urls = re.findall(r'^\s+-\s*"(https?://[^"]+)"', text, re.M)
    return {"version": version, "sha256": field("sha256"), "license": field("license"), "urls": urls}


@dataclass(frozen=True)
class BinaryInputs:
    """Where the native daemons of one architecture came from."""
    root: Path  # the Debian 12 build root (dpkg database, copyright files)
    site: Path  # the site directory of the Python packages compiled in
    nuitka_version: str
    nuitka_licenses: Path | None  # the directory holding Nuitka's license files


def binary_inputs(arch: str, root_dir: Path, build: Path) -> BinaryInputs:
    """Where the binaries of arch were built: build/<arch>/binaries.json (written by SConscript.binaries)
    names the Debian root; the site directory is the one python_site made for that root."""
    import importlib.metadata
    import json
    from sysroot import debian_root, python_site

    cache = Path(os.environ.get("WVDS_CACHE") or Path.home() / ".cache" / "wvds")
    info_file = build / arch / "binaries.json"
    info = json.loads(info_file.read_text()) if info_file.exists() else {}
    root = Path(info["root"]) if info.get("root") else debian_root.root_path(arch, cache)
    site = python_site.site_path(arch, root, cache)
    if not (root / ".complete").exists() or not (site / ".complete").exists():
        raise RuntimeError(f"the binaries for {arch} are built, but their build root ({root}) or site directory "
                           f"({site}) is gone (cleaned cache?): the SBOM cannot list what they contain. Rebuild "
                           f"them ('scons binaries'), or remove build/{arch}/bin for a delivery without them")
    version = info.get("nuitka")
    lic = None
    try:
        dist = importlib.metadata.distribution("nuitka")
        version = version or dist.version
        lic = Path(dist.locate_file(f"nuitka-{dist.version}.dist-info/licenses"))
    except importlib.metadata.PackageNotFoundError:
        pins = (root_dir / "requirements" / "dev.txt").read_text()
        version = version or re.search(r"^Nuitka==(\S+)", pins, re.M | re.I).group(1)
    return BinaryInputs(root, site, version, lic if lic and lic.is_dir() else None)


def dpkg_status(root: Path) -> dict[str, dict[str, str]]:
    """Installed packages of a Debian root: name -> {Version, Architecture, Source, Homepage}."""
    out = {}
    text = (root / "var" / "lib" / "dpkg" / "status").read_text(errors="replace")
    for para in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", para, re.M))
        if fields.get("Package") and "installed" in fields.get("Status", ""):
            out[fields["Package"]] = fields
    return out


def dpkg_owner(root: Path, arch: str) -> dict[str, str]:
    """Library file name -> Debian package, from the root's dpkg file lists.

    Only the root's own library directories count (/lib, /usr/lib and their <arch>-linux-gnu
    subdirectories, CPython's lib-dynload): a cross toolchain's copy of the same file name
    (/usr/aarch64-linux-gnu/lib/libgcc_s.so.1 in the x86_64 root) is not what was bundled.
    """
    own = re.compile(rf"^(/usr)?/lib/({arch}-linux-gnu/|python3\.\d+/lib-dynload/)?[^/]+\.so[^/]*$")
    owner = {}
    for lst in sorted((root / "var" / "lib" / "dpkg" / "info").glob("*.list")):
        pkg = lst.name[:-5].split(":")[0]
        for line in lst.read_text(errors="replace").splitlines():
            if own.match(line):
                owner.setdefault(os.path.basename(line), pkg)
    return owner


def copyright_licenses(text: str) -> list[str]:
    """License short names of a Debian (DEP-5) copyright file, in order of first appearance."""
    names = []
    for m in re.finditer(r"^License:\s*(\S.*)$", text, re.M):
        name = m.group(1).strip()
        if name not in names:
            names.append(name)
    return names


def python_packages(site: Path) -> list[dict]:
    """Every distribution in the site directory: name, version, license, license files, nested SBOMs."""
    out = []
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        text = meta.read_text(errors="replace")
        header = text.split("\n\n", 1)[0]
        fields = {}
        for k, v in re.findall(r"^([A-Za-z-]+): (.*)$", header, re.M):
            fields.setdefault(k, v.strip())
        classifiers = re.findall(r"^Classifier: License :: (?:OSI Approved :: )?(.+)$", header, re.M)
        lic = fields.get("License-Expression") or fields.get("License") or "; ".join(classifiers) or "unknown"
        d = meta.parent
        files = sorted(p for p in d.rglob("*") if p.is_file() and (p.name.upper().startswith(("LICENSE", "COPYING",
                                                                                           "NOTICE"))))
        sboms = sorted(d.glob("sboms/*.json"))
        top_level = set()  # what the package puts at the top of the site directory, as Nuitka ships it
        record = d / "RECORD"
        for line in (record.read_text(errors="replace").splitlines() if record.exists() else []):
            path = line.split(",", 1)[0]
            first = path.split("/", 1)[0]
            if not first or first.endswith((".dist-info", ".data")) or first == "..":
                continue
            if "/" in path:
                top_level.add(first + "/")
            elif EXTENSION.search(first):  # _cffi_backend.cpython-311-x86_64-linux-gnu.so -> _cffi_backend.so
                top_level.add(EXTENSION.sub(".so", first))
        out.append({"name": fields.get("Name", d.name), "version": fields.get("Version", "unknown"),
                    "license": lic, "license_files": files, "sboms": sboms, "dist_info": d,
                    "top_level": sorted(top_level)})
    return out


# --- the document ---------------------------------------------------------------------------------------

def _license(text: str) -> list[dict]:
    spdx_ish = re.fullmatch(r"[A-Za-z0-9.+\-]+(?: (?:OR|AND|WITH) [A-Za-z0-9.+\-]+)*", text or "")
    if spdx_ish and (" " in text):
        return [{"expression": text}]
    if spdx_ish and re.fullmatch(r"(Apache-2\.0|MIT|MIT-0|BSD-[23]-Clause|PSF-2\.0|ISC|Zlib|GPL-[23]\.0-only|"
                                 r"LGPL-2\.1-or-later|AGPL-3\.0-or-later)", text):
        return [{"license": {"id": text}}]
    return [{"license": {"name": text or "unknown"}}]


def _component(ref: str, name: str, version: str, *, kind: str = "library", licenses: list | None = None,
               purl: str | None = None, locations=(), supplier: dict | None = None, description: str | None = None,
               hashes: list | None = None, extra: dict | None = None) -> dict:
    c = {"type": kind, "bom-ref": ref, "name": name, "version": version}
    if supplier:
        c["supplier"] = supplier
    if description:
        c["description"] = description
    if hashes:
        c["hashes"] = hashes
    if licenses:
        c["licenses"] = licenses
    if purl:
        c["purl"] = purl
    if locations:
        c["evidence"] = {"occurrences": [{"location": loc} for loc in sorted(set(locations))]}
    if extra:
        c.update(extra)
    return c


def generate(root: Path, build: Path, contents, version: str, epoch: int,
             entries: list) -> tuple[bytes, dict[str, bytes]]:
    """(the CycloneDX JSON, {path below licenses/: text}) for the delivery made of entries."""
    shipped = {e.dest for e in entries}
    archs = contents.archs
    licenses: dict[str, bytes] = {}
    components: list[dict] = []
    deps: dict[str, set[str]] = {"wvds-crypto-svc": set()}

    ossl = conandata(root)
    ossl_license = build / archs[0] / "openssl" / "licenses" / "LICENSE.txt"
    licenses["OpenSSL-LICENSE.txt"] = ossl_license.read_bytes()
    ossl_common = dict(licenses=_license(ossl["license"]), supplier={"name": "OpenSSL Software Foundation"},
                       hashes=[{"alg": "SHA-256", "content": ossl["sha256"]}],
                       extra={"externalReferences": [{"type": "distribution", "url": u} for u in ossl["urls"]]})
    purl = f"pkg:generic/openssl@{ossl['version']}"
    if ossl["urls"]:
        purl += f"?download_url={ossl['urls'][0]}"
    components.append(_component(
        "openssl", "openssl", ossl["version"], purl=purl,
        description="OpenSSL: libcrypto, libssl and the openssl tool, built from the pinned source",
        locations=[p for a in archs for p in (f"lib/{a}/libcrypto.so.3", f"lib/{a}/libssl.so.3",
                                              f"bin/{a}/openssl")], **ossl_common))
    components.append(_component(
        "openssl-fips-provider", "openssl-fips-provider", ossl["version"], purl=purl,
        description="OpenSSL FIPS provider (fips.so) built from the same source with enable-fips; "
                    "not itself a CMVP-validated module", locations=[f"lib/{a}/fips.so" for a in archs],
        **ossl_common))
    deps["wvds-crypto-svc"] |= {"openssl", "openssl-fips-provider"}

    components.append(_component(
        "wvds-client-library", "libl4re_crypto_service", version, supplier=SUPPLIER,
        description="WvdS C client library (needs only libc)",
        locations=[f"lib/{a}/libl4re_crypto_service.so" for a in archs] + ["include/wvds_crypto.h"]))
    deps["wvds-crypto-svc"].add("wvds-client-library")
    prov = [a for a in archs if contents.provider.get(a)]
    if prov:
        components.append(_component(
            "wvds-openssl-provider", "wvds-openssl-provider", version, supplier=SUPPLIER,
            description="OpenSSL provider for keys held by crypto_service, and the wvds-keyref tool",
            locations=[p for a in prov for p in (f"lib/{a}/wvds.so", f"bin/{a}/wvds-keyref")]))
        deps["wvds-crypto-svc"].add("wvds-openssl-provider")
        deps["wvds-openssl-provider"] = {"wvds-client-library", "openssl"}

    bins = [a for a in archs if contents.binaries.get(a)]
    if bins:
        components.append(_component(
            "wvds-daemons", "wvds-daemons", version, kind="application", supplier=SUPPLIER,
            description="crypto_service, est_service and wvdsctl compiled by Nuitka into one multi-call program",
            locations=[f"bin/{a}/{p}" for a in bins for p in (MULTICALL, *PROGRAMS)]))
        components.append(_component(
            "wvds-service-library", "libwvds_service", version, supplier=SUPPLIER,
            description="crypto_service's own C library (service half of the shared-memory protocol, AES-GCM fast "
                        "path, replay windows, rate limiter), loaded only by the service; needs only libc",
            locations=[f"bin/{a}/libwvds_service.so" for a in bins]))
        deps["wvds-crypto-svc"].add("wvds-daemons")
        deps["wvds-daemons"] = {"openssl", "openssl-fips-provider", "wvds-client-library", "wvds-service-library"}
        for arch in bins:
            _binary_components(build, arch, binary_inputs(arch, root, build), shipped, components, deps, licenses)

    components = _merge(components)
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "wvds packaging/sbom.py", "version": version}]},
            "component": {"type": "application", "bom-ref": "wvds-crypto-svc", "name": "wvds-crypto-svc",
                          "version": version, "supplier": SUPPLIER,
                          "description": "WvdS Crypto Service OEM delivery (" + ", ".join(archs) + ")"},
            "properties": [{"name": "wvds:architectures", "value": ",".join(archs)}],
        },
        "components": components,
        "dependencies": [{"ref": ref, "dependsOn": sorted(on)} for ref, on in sorted(deps.items())],
    }
    body = json.dumps(bom, indent=2, sort_keys=True)
    bom["serialNumber"] = f"urn:uuid:{uuid.uuid5(UUID_NAMESPACE, body)}"
    return (json.dumps(bom, indent=2, sort_keys=True) + "\n").encode(), licenses


def _binary_components(build: Path, arch: str, inputs: BinaryInputs, shipped: set[str], components: list,
                       deps: dict, licenses: dict) -> None:
    deb_arch = DEBIAN_ARCH[arch]
    status = dpkg_status(inputs.root)
    owner = dpkg_owner(inputs.root, arch)
    prefix = f"bin/{arch}/"
    daemon_deps = deps["wvds-daemons"]

    # Debian libraries bundled beside the program, and CPython (interpreter linked into wvds, its
    # extension modules beside it): every Debian package they come from, by the root's file lists
    packages: dict[str, list[str]] = {}
    for dest in sorted(shipped):
        if not dest.startswith(prefix) or "/" in dest[len(prefix):]:
            continue
        base = dest[len(prefix):]
        if ".so" not in base or base in ("libcrypto.so.3", "libssl.so.3"):
            continue
        pkg = owner.get(base)
        if pkg is None and base.endswith(".so"):  # Python's extension modules: _ssl.so -> _ssl.cpython-311-*.so
            pkg = owner.get(base[:-3] + f".cpython-311-{arch}-linux-gnu.so")
        if pkg:
            packages.setdefault(pkg, []).append(dest)
    python_debs = sorted(p for p, info in status.items() if info.get("Source", p).split()[0] == "python3.11"
                         and p.startswith("libpython3.11"))
    cpython_locations = [f"{prefix}wvds"]
    for pkg in list(packages):
        if pkg in python_debs:
            cpython_locations += packages.pop(pkg)
    if python_debs:
        ver = status[python_debs[0]]["Version"]
        for pkg in python_debs:
            copyright_file = inputs.root / "usr" / "share" / "doc" / pkg / "copyright"
            if copyright_file.exists():
                licenses["debian/python3.11.copyright"] = copyright_file.read_bytes()
                break
        ref = f"deb:python3.11@{ver}?arch={deb_arch}"
        components.append(_component(
            ref, "cpython", ver, licenses=_license("PSF-2.0"), supplier={"name": "Debian"},
            description="CPython 3.11 from Debian 12 (" + ", ".join(python_debs) + "): the interpreter is linked "
                        "into wvds, its extension modules sit beside it",
            locations=cpython_locations, purl=f"pkg:deb/debian/python3.11@{ver}?arch={deb_arch}&distro=debian-12"))
        daemon_deps.add(ref)
    for pkg, locations in sorted(packages.items()):
        info = status.get(pkg, {})
        ver = info.get("Version", "unknown")
        copyright_file = inputs.root / "usr" / "share" / "doc" / pkg / "copyright"
        text = copyright_file.read_text(errors="replace") if copyright_file.exists() else ""
        if text:
            licenses[f"debian/{pkg}.copyright"] = text.encode()
        ref = f"deb:{pkg}@{ver}?arch={deb_arch}"
        lic = [{"license": {"name": n}} for n in copyright_licenses(text)] or None
        components.append(_component(ref, pkg, ver, licenses=lic, locations=locations, supplier={"name": "Debian"},
                                     purl=f"pkg:deb/debian/{pkg}@{ver}?arch={deb_arch}&distro=debian-12"))
        daemon_deps.add(ref)

    # Nuitka's runtime library is compiled into the program
    ref = f"pypi:nuitka@{inputs.nuitka_version}"
    components.append(_component(ref, "nuitka", inputs.nuitka_version, purl=f"pkg:pypi/nuitka@{inputs.nuitka_version}",
                                 licenses=_license("AGPL-3.0-or-later WITH Nuitka Runtime Library Exception 1.0"),
                                 description="Python compiler; its runtime library (under the Nuitka Runtime "
                                             "Library Exception) is part of the program",
                                 locations=[f"{prefix}wvds"]))
    daemon_deps.add(ref)
    if inputs.nuitka_licenses:
        for f in sorted(inputs.nuitka_licenses.iterdir()):
            licenses[f"python/nuitka-{inputs.nuitka_version}/{f.name}"] = f.read_bytes()

    # Python packages compiled in (as bytecode), from the site directory (the build's list, if it wrote one)
    listed = build / arch / "python-packages.txt"
    names = {re.sub(r"[-_.]+", "-", ln.split("==")[0]).lower() for ln in listed.read_text().splitlines()
             if ln.strip()} if listed.exists() else None
    for p in python_packages(inputs.site):
        if names is not None and re.sub(r"[-_.]+", "-", p["name"]).lower() not in names:
            continue
        norm = re.sub(r"[-_.]+", "-", p["name"]).lower()
        ref = f"pypi:{norm}@{p['version']}"
        extra = {}
        nested = []
        for sb in p["sboms"]:
            try:
                nested += json.loads(sb.read_text()).get("components", [])
            except ValueError:
                continue
        if nested:
            extra["components"] = sorted(({k: v for k, v in c.items() if k != "bom-ref"} for c in nested),
                                         key=lambda c: (c.get("name", ""), c.get("version", "")))
        locations = [f"{prefix}wvds"] + [f"{prefix}{top}" for top in p["top_level"]
                                          if any(d == f"{prefix}{top}" or (top.endswith("/") and
                                                                            d.startswith(f"{prefix}{top}"))
                                                 for d in shipped)]
        components.append(_component(ref, p["name"], p["version"], purl=f"pkg:pypi/{norm}@{p['version']}",
                                     licenses=_license(p["license"]), locations=locations, extra=extra))
        daemon_deps.add(ref)
        for f in p["license_files"]:
            licenses[f"python/{norm}-{p['version']}/{f.relative_to(p['dist_info']).as_posix()}"] = f.read_bytes()


def _merge(components: list[dict]) -> list[dict]:
    """One component per bom-ref (the same package for two architectures): locations united; sorted."""
    by_ref: dict[str, dict] = {}
    for c in components:
        old = by_ref.get(c["bom-ref"])
        if old is None:
            by_ref[c["bom-ref"]] = c
            continue
        locs = {o["location"] for x in (old, c) for o in x.get("evidence", {}).get("occurrences", [])}
        if locs:
            old["evidence"] = {"occurrences": [{"location": loc} for loc in sorted(locs)]}
    return [by_ref[k] for k in sorted(by_ref)]
