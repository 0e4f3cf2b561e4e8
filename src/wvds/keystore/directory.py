"""A directory of encrypted key files (fileformat.py): the persistence shared by the file, TPM and PKCS#11
backends. The backends differ only in where the key-encryption key comes from (`_create_kek`, `_open_kek`).

Durability: every write goes to a temporary file in the same directory, is
fsync()ed, renamed over the old file, and the directory is fsync()ed, so after
a crash each key file is either the old or the new version, never a mixture.
Everything is opened relative to directory descriptors with O_NOFOLLOW, after
the directory's owner and mode were checked.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import threading
import time
from abc import abstractmethod
from typing import Any

from wvds import ossl
from wvds.keystore import fileformat as ff
from wvds.keystore.base import KeyRecord, KeyStore, KeyStoreError
from wvds.keystore.kek import Kek, KekAuthError

log = logging.getLogger("wvds.keystore")

_O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
REPLAY_DIR = "replay"  # the keys' replay windows (docs/replay.md): no secrets, only which nonces were seen


class EncryptedDirectoryStore(KeyStore):
    """Call `_open_store(directory)` from the subclass's __init__ once its settings are read."""

    def _open_store(self, directory: str) -> None:
        self.directory = directory
        self._lock = threading.RLock()
        self._kek: Kek | None = None
        self.unreadable: dict[int, str] = {}
        self._native_refs: dict[int, bytes] = {}
        self._dir_fd = _secure_dir(directory, "keystore.directory")
        try:
            self._lock_fd = self._take_lock()
            self._keys_fd = _secure_dir(ff.KEYS_DIR, "keystore.directory", parent_fd=self._dir_fd,
                                        shown=os.path.join(directory, ff.KEYS_DIR))
            self._replay_fd = _secure_dir(REPLAY_DIR, "keystore.directory", parent_fd=self._dir_fd,
                                          shown=os.path.join(directory, REPLAY_DIR))
            self._open_header()
        except BaseException:
            self.close()
            raise

    # -- subclass hooks ---------------------------------------------------------
    @abstractmethod
    def _create_kek(self, store_id: bytes) -> tuple[Kek, dict[str, Any]]:
        """A new KEK for a new store and the header's `kek` section that lets _open_kek find it again."""

    @abstractmethod
    def _open_kek(self, section: dict[str, Any], store_id: bytes) -> Kek:
        """The KEK described by the header's `kek` section; KeyStoreError with a clear reason if unavailable."""

    def _wrong_kek_hint(self) -> str:
        return "the KEK does not match this store"

    def _destroy_native(self, key_id: int, reference: bytes) -> None:
        """Remove a native key's object from the secure element (backends with native keys override)."""

    # -- opening ----------------------------------------------------------------
    def _take_lock(self) -> int:
        fd = os.open(ff.LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self._dir_fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise KeyStoreError(f"keystore.directory: {self.directory} is in use by another running service") from None
        return fd

    def _open_header(self) -> None:
        data = self._read(self._dir_fd, ff.HEADER_FILE)
        if data is None:
            if any(ff.key_id_from_name(n) is not None for n in os.listdir(self._keys_fd)):
                raise KeyStoreError(f"keystore.directory: {self.directory} holds key files but no {ff.HEADER_FILE}: "
                                    "restore it from a backup (a new store cannot open the old keys)")
            self.store_id = ossl.random_bytes(16)
            self._kek, section = self._create_kek(self.store_id)
            header = ff.new_header(self.store_id, int(time.time()), section)
            self._write(self._dir_fd, ff.HEADER_FILE, ff.encode_header(header, self._kek.seal))
            self.header = header
            log.info("key store created", extra={"directory": self.directory, "kek": self._kek.kind})
            return
        where = os.path.join(self.directory, ff.HEADER_FILE)
        try:
            header = ff.parse_header(data)
        except ff.FormatError as e:
            raise KeyStoreError(f"keystore.directory: {where}: {e}") from None
        self.store_id = bytes.fromhex(header["store_id"])
        self._kek = self._open_kek(header["kek"], self.store_id)
        try:
            check = self._kek.open(ff.header_aad(header), bytes.fromhex(header["check"]))
        except KekAuthError:
            check = None
        if check != ff.CHECK_PLAINTEXT:
            raise KeyStoreError(f"keystore: cannot open {where}: {self._wrong_kek_hint()} "
                                "(or the header was modified)")
        self.header = header

    # -- KeyStore -----------------------------------------------------------------
    def load(self) -> list[KeyRecord]:
        records = []
        with self._lock:
            for name in sorted(os.listdir(self._keys_fd)):
                if name.startswith(".") and name.endswith(".tmp"):  # left by a crash mid-write: never renamed
                    _unlink(self._keys_fd, name)
                    continue
                key_id = ff.key_id_from_name(name)
                if key_id is None:
                    log.warning("stray file in key store ignored", extra={"file": name})
                    continue
                try:
                    rec = self._load_one(name, key_id)
                except (ff.FormatError, OSError) as e:
                    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                    self.unreadable[key_id] = reason
                    log.error("stored key unreadable, skipped", extra={"key_id": f"0x{key_id:08x}",
                                                                        "file": name, "reason": reason})
                    continue
                if rec.native:
                    self._native_refs[rec.key_id] = rec.material
                records.append(rec)
        return records

    def _load_one(self, name: str, key_id: int) -> KeyRecord:
        fd = os.open(name, _O_READ, dir_fd=self._keys_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ff.FormatError("not a regular file")
            if st.st_mode & 0o077:
                log.warning("key file was accessible to group/others; mode set to 0600",
                            extra={"key_id": f"0x{key_id:08x}", "mode": f"{stat.S_IMODE(st.st_mode):04o}"})
                os.fchmod(fd, 0o600)
            blob = _read_all(fd)
        finally:
            os.close(fd)
        try:
            return ff.decode_key(blob, self.store_id, self._kek.open, key_id)
        except KekAuthError:
            raise ff.FormatError("authentication failed: the file was modified or damaged") from None

    def save(self, record: KeyRecord) -> None:
        with self._lock:
            try:
                blob = ff.encode_key(record, self.store_id, self._kek.seal)
            except Exception as e:  # noqa: BLE001  the KEK device may fail; the caller only needs "not stored"
                raise KeyStoreError(f"cannot seal key 0x{record.key_id:08x}: {e}") from None
            self._write(self._keys_fd, ff.key_file_name(record.key_id), blob)
            self.unreadable.pop(record.key_id, None)
            if record.native:
                self._native_refs[record.key_id] = record.material

    def delete(self, key_id: int) -> None:
        with self._lock:
            try:
                os.unlink(ff.key_file_name(key_id), dir_fd=self._keys_fd)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise KeyStoreError(f"cannot delete key 0x{key_id:08x}: {e.strerror}") from None
            _fsync_dir(self._keys_fd)
            self.unreadable.pop(key_id, None)
            reference = self._native_refs.pop(key_id, None)
        if reference is not None:
            try:
                self._destroy_native(key_id, reference)
            except Exception as e:  # noqa: BLE001  the key file is gone: the key is unusable either way
                log.warning("native key object not removed from the secure element",
                            extra={"key_id": f"0x{key_id:08x}", "reason": str(e)})

    def replay_path(self, key_id: int) -> str:
        return os.path.join(self.directory, REPLAY_DIR, f"{key_id:08x}.win")

    def drop_replay(self, key_id: int) -> None:
        try:
            os.unlink(f"{key_id:08x}.win", dir_fd=self._replay_fd)
        except FileNotFoundError:
            pass
        except OSError as e:  # the key is gone either way; an orphan window holds no secret
            log.warning("replay window of a deleted key not removed", extra={"key_id": f"0x{key_id:08x}",
                                                                             "reason": e.strerror})

    def close(self) -> None:
        if getattr(self, "_kek", None) is not None:
            self._kek.close()
            self._kek = None
        for attr in ("_replay_fd", "_keys_fd", "_lock_fd", "_dir_fd"):
            fd = getattr(self, attr, None)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "directory": self.directory, "format_version": ff.VERSION,
                "kek": self._kek.kind if self._kek else None, "store_id": self.store_id.hex(),
                "unreadable_keys": [f"0x{k:08x}" for k in sorted(self.unreadable)],
                "native_keys": len(self._native_refs)}

    # -- files ----------------------------------------------------------------
    def _read(self, dir_fd: int, name: str) -> bytes | None:
        try:
            fd = os.open(name, _O_READ, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        try:
            return _read_all(fd)
        finally:
            os.close(fd)

    def _write(self, dir_fd: int, name: str, data: bytes) -> None:
        """Atomic replace: temp file (0600) + fsync + rename + fsync of the directory."""
        tmp = f".{name}.{ossl.random_bytes(6).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            _fsync_dir(dir_fd)
        except OSError as e:
            _unlink(dir_fd, tmp)
            raise KeyStoreError(f"cannot write {name} in {self.directory}: {e.strerror or e}") from None


def _secure_dir(path: str, field: str, parent_fd: int | None = None, shown: str | None = None) -> int:
    """Open (creating it 0700 if missing) a directory that must be ours and closed to group and others."""
    shown = shown or path
    try:
        os.mkdir(path, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        pass
    except FileNotFoundError:
        if parent_fd is None:  # create missing parents too (0700), e.g. /var/lib/wvds/keystore on first start
            try:
                os.makedirs(path, 0o700, exist_ok=True)
            except OSError as e:
                raise KeyStoreError(f"{field}: cannot create {shown}: {e.strerror}") from None
    except OSError as e:
        raise KeyStoreError(f"{field}: cannot create {shown}: {e.strerror}") from None
    try:
        fd = os.open(path, _O_DIR, dir_fd=parent_fd)
    except OSError as e:
        why = "is a symbolic link or not a directory" if e.errno in (errno.ELOOP, errno.ENOTDIR) else e.strerror
        raise KeyStoreError(f"{field}: {shown}: {why}") from None
    st = os.fstat(fd)
    problem = None
    if st.st_uid != os.geteuid():
        problem = f"is owned by uid {st.st_uid}, not by the service user (uid {os.geteuid()})"
    elif st.st_mode & 0o077:
        problem = f"has mode {stat.S_IMODE(st.st_mode):04o}; it must be 0700 (no access for group or others)"
    if problem:
        os.close(fd)
        raise KeyStoreError(f"{field}: {shown} {problem}")
    return fd


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _fsync_dir(dir_fd: int) -> None:
    os.fsync(dir_fd)


def _unlink(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
