"""Crash-safe files: atomic writes, and the generation switch of a certificate/key pair.

A certificate and the key it belongs to change together, so they live together in
one *generation* directory, and one symlink says which generation is current:

    <state_dir>/certs/<name>/gen-000007/cert.pem     the certificate
                                         chain.pem    certificate + intermediates (leaf first)
                                         key.json     which crypto_service key it belongs to
                                         key.ref.pem  the same key as a wvds key reference (keyref.py):
                                                      the "private key" for TLS client authentication
                             current -> gen-000007    the only commit point

A new generation is written under a temporary name, every file and the directory
are fsynced, it is renamed into place, then a new symlink replaces `current` with
rename(2) and the parent directory is fsynced. A crash before that rename leaves
the old generation current; after it, the new one. Readers (the OEM gateway) read
through `current/` and always see a matching pair. `repair()` at start-up removes
what an interrupted commit left behind. The previous generation is kept (its key
too) until the next commit, for readers that opened it just before the switch.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass

from wvds.est_service import keyref
from wvds.est_service.errors import EstError
from wvds.est_service.x509 import Cert, pem_bundle

_GEN = re.compile(r"^gen-(\d{6,})$")


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes | str, mode: int = 0o644) -> None:
    """Write temp, fsync, rename over `path`, fsync the directory."""
    if isinstance(data, str):
        data = data.encode()
    directory = os.path.dirname(path) or "."
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def write_json(path: str, doc) -> None:
    atomic_write(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@dataclass(frozen=True)
class Credential:
    """The committed pair: certificate (with its chain) and the crypto_service key it belongs to."""
    generation: int
    cert: Cert
    chain: list[Cert]  # intermediates, leaf excluded
    key_id: int
    key_algorithm: str
    key_label: str
    csr_sha256: str = ""  # the request this certificate answered
    differences: tuple[str, ...] = ()  # what the CA changed against the request (issued.py)

    @property
    def directory_name(self) -> str:
        return f"gen-{self.generation:06d}"


class CertStore:
    def __init__(self, directory: str):
        self.dir = directory
        self.current_link = os.path.join(directory, "current")

    def ensure(self) -> None:
        os.makedirs(self.dir, mode=0o755, exist_ok=True)

    def _generations(self) -> list[int]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for n in names if (m := _GEN.match(n)))

    def current_generation(self) -> int | None:
        try:
            target = os.readlink(self.current_link)
        except (FileNotFoundError, OSError):
            return None
        m = _GEN.match(os.path.basename(target))
        return int(m.group(1)) if m else None

    def current(self) -> Credential | None:
        gen = self.current_generation()
        return None if gen is None else self.load(gen)

    def generation_dir(self, gen: int) -> str:
        return os.path.join(self.dir, f"gen-{gen:06d}")

    def load(self, gen: int) -> Credential:
        d = self.generation_dir(gen)
        try:
            meta = read_json(os.path.join(d, "key.json"))
            with open(os.path.join(d, "chain.pem"), "rb") as f:
                certs = Cert.from_pem_text(f.read())
        except (OSError, ValueError, EstError) as e:
            raise EstError(f"{d}: unreadable generation: {e}") from None
        if not certs or certs[0].fingerprint != meta.get("certificate_sha256"):
            raise EstError(f"{d}: chain.pem does not start with the certificate key.json names")
        return Credential(gen, certs[0], certs[1:], int(meta["key_id"]), meta["key_algorithm"],
                          meta.get("key_label", ""), meta.get("csr_sha256", ""),
                          tuple(str(d) for d in meta.get("differences") or ()))

    def key_reference(self, credential: Credential, socket_path: str) -> str:
        """Path of the generation's key reference (key.ref.pem) naming socket_path, for TLS client
        authentication.

        A generation committed before references were written, or when crypto_service had another
        socket, gets its reference (re)written now, atomically: it is derived from key.json and the
        configuration, so it adds nothing the generation did not already say."""
        path = os.path.join(self.generation_dir(credential.generation), keyref.FILE_NAME)
        text = keyref.to_pem(credential.key_id, credential.key_algorithm, socket_path)
        try:
            with open(path, encoding="ascii") as f:
                if f.read() == text:
                    return path
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        atomic_write(path, text)
        return path

    def commit(self, cert: Cert, chain: list[Cert], key_id: int, key_algorithm: str, key_label: str,
               extra: dict | None = None, crypto_socket: str | None = None) -> Credential:
        """Write a new generation and make it current (the single atomic step).

        With crypto_socket, the generation also gets key.ref.pem: the key as a wvds key reference
        naming that socket (the one est_service itself uses for the key)."""
        self.ensure()
        gens = self._generations()
        gen = (max(gens) if gens else 0) + 1
        name = f"gen-{gen:06d}"
        tmp = os.path.join(self.dir, f"{name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        os.mkdir(tmp, 0o755)
        meta = {"key_id": key_id, "key_algorithm": key_algorithm, "key_label": key_label,
                "certificate_sha256": cert.fingerprint, "subject": cert.subject_text, "serial": cert.serial_hex,
                "not_before": cert.not_before.isoformat(), "not_after": cert.not_after.isoformat(),
                **(extra or {})}
        if crypto_socket is not None:
            meta["crypto_service_socket"] = crypto_socket
        files = [("cert.pem", cert.pem), ("chain.pem", pem_bundle([cert, *chain])),
                 ("key.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")]
        if crypto_socket is not None:
            files.append((keyref.FILE_NAME, keyref.to_pem(key_id, key_algorithm, crypto_socket)))
        for fname, data in files:
            fd = os.open(os.path.join(tmp, fname), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        fsync_dir(tmp)
        final = os.path.join(self.dir, name)
        os.rename(tmp, final)
        fsync_dir(self.dir)
        link_tmp = self.current_link + ".new"
        try:
            os.unlink(link_tmp)
        except FileNotFoundError:
            pass
        os.symlink(name, link_tmp)
        os.replace(link_tmp, self.current_link)  # the commit point
        fsync_dir(self.dir)
        self.prune()
        return Credential(gen, cert, list(chain), key_id, key_algorithm, key_label, meta.get("csr_sha256", ""),
                          tuple(meta.get("differences") or ()))

    def previous(self) -> Credential | None:
        cur = self.current_generation()
        older = [g for g in self._generations() if cur is not None and g < cur]
        if not older:
            return None
        try:
            return self.load(older[-1])
        except EstError:
            return None

    def prune(self) -> None:
        """Keep the current generation and the one before it."""
        cur = self.current_generation()
        if cur is None:
            return
        older = [g for g in self._generations() if g < cur]
        for g in older[:-1]:
            shutil.rmtree(os.path.join(self.dir, f"gen-{g:06d}"), ignore_errors=True)

    def repair(self) -> list[int]:
        """Remove leftovers of an interrupted commit; return key ids of generations that never became current."""
        self.ensure()
        orphan_keys = []
        cur = self.current_generation()
        for n in os.listdir(self.dir):
            p = os.path.join(self.dir, n)
            if n.endswith(".tmp") or n == "current.new" or ".tmp." in n:
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    os.unlink(p)
        for g in self._generations():
            if cur is None or g > cur:
                try:
                    orphan_keys.append(self.load(g).key_id)
                except EstError:
                    pass
                shutil.rmtree(os.path.join(self.dir, f"gen-{g:06d}"), ignore_errors=True)
            else:  # a key reference rewritten by key_reference() when the process died
                d = self.generation_dir(g)
                for n in os.listdir(d):
                    if ".tmp." in n:
                        os.unlink(os.path.join(d, n))
        if cur is not None and not os.path.isdir(os.path.join(self.dir, f"gen-{cur:06d}")):
            raise EstError(f"{self.current_link} points to a missing generation")
        fsync_dir(self.dir)
        return orphan_keys
