"""Find, download and verify a pinned source tarball.

Kept apart from the recipe so the fetch order is readable on its own:
  1. a local mirror directory ($WVDS_SOURCE_MIRROR), e.g. a release engineer's
     offline copy (CI points it at ../shared/mirror);
  2. the upstream release URLs listed in conandata.yml;
  3. Debian's source archive, via every Debian mirror the machine's apt sources name.
The sha256 pinned in conandata.yml decides; a mismatch anywhere is fatal.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request


class FetchError(Exception):
    pass


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def apt_mirror_uris() -> list[str]:
    """Base URIs of the Debian archives configured for apt (one-line and deb822 formats)."""
    uris: list[str] = []
    files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
        + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    for path in files:
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for m in re.finditer(r"^URIs:\s*(.+)$", text, re.M):
                uris.extend(m.group(1).split())
        else:
            for line in text.splitlines():
                parts = line.split("#", 1)[0].split()
                if parts and parts[0] in ("deb", "deb-src"):
                    rest = [p for p in parts[1:] if not p.startswith("[")]
                    if rest:
                        uris.append(rest[0])
    seen, out = set(), []
    for u in uris:
        u = u.rstrip("/")
        # Only the main Debian archive holds the source pool; skip security and third parties.
        if u.startswith(("http://", "https://")) and u.endswith("/debian") and u not in seen:
            seen.add(u)
            out.append(u)
    return out


def candidates(data: dict) -> list[tuple[str, str]]:
    """Ordered (kind, location) pairs to try for the tarball."""
    out: list[tuple[str, str]] = []
    mirror = os.environ.get("WVDS_SOURCE_MIRROR")
    if mirror:
        out.append(("file", os.path.join(mirror, data["filename"])))
    out.extend(("url", u) for u in data.get("url", []))
    if data.get("debian_pool_path"):
        out.extend(("url", f"{base}/{data['debian_pool_path']}") for base in apt_mirror_uris())
    return out


def _download(url: str, dest: str, timeout: float = 30) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "wvds-build"})
    with urllib.request.urlopen(req, timeout=timeout) as r, open(dest, "wb") as f:
        shutil.copyfileobj(r, f, 1 << 20)


def _get(kind: str, where: str, dest: str) -> None:
    if kind == "file":
        if not os.path.isfile(where):
            raise FileNotFoundError(where)
        shutil.copyfile(where, dest)
    else:
        _download(where, dest)


def fetch(data: dict, dest: str, log=print) -> str:
    """Place the verified tarball at dest; return where it came from.

    Also fetches the detached signature (<location>.asc) beside it when available.
    """
    errors = []
    for kind, where in candidates(data):
        tmp = dest + ".part"
        try:
            _get(kind, where, tmp)
        except Exception as exc:  # network or file errors: try the next place
            errors.append(f"{where}: {exc}")
            log(f"source not available from {where}: {exc}")
            continue
        digest = sha256_of(tmp)
        if digest != data["sha256"]:
            os.unlink(tmp)
            raise FetchError(f"sha256 mismatch for {where}: got {digest}, pinned {data['sha256']}")
        os.replace(tmp, dest)
        try:
            _get(kind, where + ".asc", dest + ".asc")
        except Exception as exc:
            log(f"no signature next to {where}: {exc}")
        log(f"source {data['filename']} from {where} (sha256 ok)")
        return where
    raise FetchError("no source location worked:\n  " + "\n  ".join(errors))


def verify_signature(tarball: str, keys_asc: str, log=print) -> bool | None:
    """Verify tarball.asc against the pinned release keys.

    Returns True when verified, None when it cannot be checked (no gpg or no
    signature), and raises FetchError when the signature is bad.
    """
    sig = tarball + ".asc"
    gpg = shutil.which("gpg")
    gpgv = shutil.which("gpgv")
    if not (gpg and gpgv):
        log("gpg not available: signature not checked (sha256 pin still enforced)")
        return None
    if not os.path.exists(sig):
        log("no upstream signature found: signature not checked (sha256 pin still enforced)")
        return None
    with tempfile.TemporaryDirectory() as home:
        keyring = os.path.join(home, "keys.gpg")
        subprocess.run([gpg, "--batch", "--homedir", home, "--yes", "-o", keyring, "--dearmor", keys_asc],
                       check=True, capture_output=True)
        r = subprocess.run([gpgv, "--keyring", keyring, sig, tarball], capture_output=True, text=True)
        if r.returncode != 0:
            raise FetchError(f"bad signature on {tarball}:\n{r.stderr}")
    log("upstream signature verified with the pinned OpenSSL release keys")
    return True
