"""Fetch a source archive and pin it by the digest of its extracted tree, not by the archive's bytes.

Places, in order: $WVDS_SOURCE_MIRROR/<filename>, then the upstream URLs of conandata.yml.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request


class FetchError(Exception):
    pass


def tree_digest(root: str) -> tuple[str, int]:
    """sha256 over "relative path NUL sha256(content) LF" of every file (a link: "link:" + target), sorted."""
    h, count = hashlib.sha256(), 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                content = b"link:" + os.readlink(path).encode()
            else:
                with open(path, "rb") as f:
                    content = hashlib.file_digest(f, "sha256").hexdigest().encode()
            h.update(os.path.relpath(path, root).encode() + b"\0" + content + b"\n")
            count += 1
    return h.hexdigest(), count


def _check_members(t: tarfile.TarFile, where: str) -> None:
    """Refuse what could write outside the extraction directory (Python 3.11.2 has no extraction filter);
    the tree digest, checked after extraction, decides everything else."""
    for m in t.getmembers():
        parts = m.name.split("/")
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir() or m.issym()) \
                or (m.issym() and (m.linkname.startswith("/") or ".." in m.linkname.split("/"))):
            raise FetchError(f"{where}: unexpected archive member {m.name!r}")


def _candidates(data: dict) -> list[str]:
    mirror = os.environ.get("WVDS_SOURCE_MIRROR")
    return ([os.path.join(mirror, data["filename"])] if mirror else []) + list(data.get("url", []))


def fetch_tree(data: dict, dest: str, log=print) -> str:
    """Extract the pinned tree into dest (which must not exist); return where it came from."""
    errors = []
    for where in _candidates(data):
        with tempfile.TemporaryDirectory() as tmp:
            archive = os.path.join(tmp, "src.tar.gz")
            try:
                if "://" in where:
                    req = urllib.request.Request(where, headers={"User-Agent": "wvds-build"})
                    with urllib.request.urlopen(req, timeout=60) as r, open(archive, "wb") as f:
                        shutil.copyfileobj(r, f, 1 << 20)
                else:
                    shutil.copyfile(where, archive)
                with tarfile.open(archive) as t:
                    _check_members(t, where)
                    t.extractall(os.path.join(tmp, "x"))
            except (OSError, tarfile.TarError) as e:  # not there, network, corrupt: try the next place
                errors.append(f"{where}: {e}")
                log(f"source not available from {where}: {e}")
                continue
            tops = os.listdir(os.path.join(tmp, "x"))
            if len(tops) != 1:
                raise FetchError(f"{where}: expected one top directory, found {tops}")
            root = os.path.join(tmp, "x", tops[0])
            digest, count = tree_digest(root)
            if digest != data["tree_sha256"]:
                raise FetchError(f"{where}: tree digest {digest} ({count} files), pinned {data['tree_sha256']} "
                                 f"({data['files']} files)")
            shutil.move(root, dest)
            log(f"source tree from {where} ({count} files, tree digest ok)")
            return where
    raise FetchError("no source location worked:\n  " + "\n  ".join(errors))
