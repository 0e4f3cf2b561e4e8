"""Reading a secret from a file the way every part of the product does: the file must be a regular
file (its last component not a symbolic link), owned by the process's user or root, and neither
group nor others may read or write it. Used for the key store's device secret and passphrase
(keystore.settings) and for est_service's bootstrap password and client key."""
from __future__ import annotations

import os
import stat


class PrivateFileError(Exception):
    """The file is missing or unusable as a secret; the message says which and why."""


def open_private(path: str, what: str) -> int:
    """An open descriptor of `path` after the checks; the caller closes it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PrivateFileError(f"{path}: {what} file not found") from None
    except OSError as e:
        raise PrivateFileError(f"{path}: cannot open the {what} file ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PrivateFileError(f"{path}: not a regular file")
        if st.st_uid not in (os.geteuid(), 0):
            raise PrivateFileError(f"{path}: the {what} file belongs to uid {st.st_uid}, not to this service's "
                                   f"user ({os.geteuid()}) or root; chown it")
        if st.st_mode & 0o077:
            raise PrivateFileError(f"{path}: the {what} file is accessible to group or others "
                                   f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 0600 it")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_private(path: str, what: str) -> bytes:
    fd = open_private(path, what)
    try:
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
        return data
    finally:
        os.close(fd)
