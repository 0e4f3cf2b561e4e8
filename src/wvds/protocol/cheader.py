"""Generate the protocol block of the C header from the Python definitions.

    python -m wvds.protocol.cheader                       # print the block
    python -m wvds.protocol.cheader --check  <header>     # exit 1 with a diff if the block is stale
    python -m wvds.protocol.cheader --update <header>     # rewrite the block in place

The block sits between BEGIN/END marker lines in src/c/include/wvds_crypto.h.
Everything in it comes from wvds.protocol.constants (every number on the wire)
and wvds.version (the product version), so the C library and the Python code
can never disagree. A new enum class in constants.py must be given a C name in
ENUMS/FLAGS below; the generator refuses to run until it is.
"""
from __future__ import annotations

import argparse
import difflib
import enum
import sys
from pathlib import Path

from wvds import version
from wvds.protocol import constants
from wvds.protocol.payloads import KeyListResponse

BEGIN = "/* BEGIN GENERATED: python -m wvds.protocol.cheader */"
END = "/* END GENERATED */"


class ClientError(enum.IntEnum):
    """Statuses only the C library returns (never on the wire): transport and argument errors."""
    ERR_CONNECT = 0x100  # cannot reach the service socket
    ERR_REFUSED = 0x101  # the service refused the connection (peer check, WELCOME status non-zero)
    ERR_TIMEOUT = 0x102  # no answer within the connection's timeout
    ERR_PROTOCOL = 0x103  # malformed WELCOME, shared memory or response
    ERR_BUFFER_TOO_SMALL = 0x104  # the caller's output buffer is too small; the needed size is reported
    ERR_ARGUMENT = 0x105  # invalid argument (NULL pointer, length out of range, unknown flag ...)
    ERR_DISCONNECTED = 0x106  # the service closed the connection
    ERR_SYSTEM = 0x107  # a system call failed; errno tells why


# Python enum class -> (C typedef name, prefix of the member names)
ENUMS = {
    constants.RequestType: ("wvds_request_type", "WVDS_REQ_"),
    constants.Algorithm: ("wvds_algorithm", "WVDS_ALG_"),
    constants.KeyFormat: ("wvds_key_format", "WVDS_KEY_FORMAT_"),
    constants.KeyRefKind: ("wvds_keyref_kind", "WVDS_KEYREF_"),
    constants.HashAlg: ("wvds_hash_alg", "WVDS_HASH_"),
}
# Python flag class -> (prefix of the member names, name of the mask of every known bit)
FLAGS = {
    constants.KeyUsage: ("WVDS_USAGE_", "WVDS_USAGE_ALL"),
    constants.KemFlags: ("WVDS_KEM_", "WVDS_KEM_FLAGS_ALL"),
    constants.EcdsaFlags: ("WVDS_ECDSA_", "WVDS_ECDSA_FLAGS_ALL"),
}


def _c_string(data: bytes) -> str:
    out = []
    for b in data:
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")  # octal escapes never swallow the next character (hex ones do)
    return '"' + "".join(out) + '"'


def _members(cls) -> list[tuple[str, int]]:
    return [(m.name, int(m.value)) for m in cls.__members__.values()]


def _enum(name: str, items: list[tuple[str, int]], width: int = 2, comment: str = "") -> list[str]:
    lines = [f"/* {comment} */"] if comment else []
    lines.append(f"typedef enum {name} {{")
    lines += [f"    {n} = 0x{v:0{width}X}{',' if i < len(items) - 1 else ''}" for i, (n, v) in enumerate(items)]
    lines.append(f"}} {name};")
    return lines


def _scalars() -> list[str]:
    lines = []
    for name, value in vars(constants).items():
        if not name.isupper() or name.startswith("_"):
            continue
        if isinstance(value, bool) or isinstance(value, enum.Enum):
            continue
        if isinstance(value, int):
            literal = f"0x{value:02X}u" if name.endswith(("_MAGIC", "_VERSION")) else f"{value}u"
            lines.append(f"#define WVDS_{name} {literal}")
        elif isinstance(value, bytes):
            lines.append(f"#define WVDS_{name} {_c_string(value)}")
            lines.append(f"#define WVDS_{name}_LEN {len(value)}u")
    return lines


def _check_every_class_is_mapped() -> None:
    for name, value in vars(constants).items():
        if isinstance(value, type) and issubclass(value, enum.Enum) and value.__module__ == constants.__name__:
            if value not in ENUMS and value not in FLAGS and value is not constants.Status:
                raise SystemExit(f"cheader: {name} in constants.py has no C mapping; add it to ENUMS or FLAGS")


def generate() -> str:
    _check_every_class_is_mapped()
    major, minor, patch = (int(p) for p in version.VERSION.split("."))
    lines = [
        BEGIN,
        "/* From src/wvds/protocol/constants.py and src/wvds/version.py. Do not edit by hand:",
        " * change the Python, then run `python -m wvds.protocol.cheader --update <this file>`. */",
        "",
        f'#define WVDS_PRODUCT_VERSION "{version.VERSION}"',
        f"#define WVDS_PRODUCT_VERSION_MAJOR {major}",
        f"#define WVDS_PRODUCT_VERSION_MINOR {minor}",
        f"#define WVDS_PRODUCT_VERSION_PATCH {patch}",
        "",
        *_scalars(),
        f"#define WVDS_KEY_LIST_MAX_ENTRIES {KeyListResponse.MAX_ENTRIES}u",
        "",
        *_enum("wvds_status",
               [("WVDS_" + n, v) for n, v in _members(constants.Status)]
               + [("WVDS_" + n, v) for n, v in _members(ClientError)],
               comment="Wire statuses (0x00-0xFF, as the service answers them) and library errors (0x100 up)."),
    ]
    for cls, (cname, prefix) in ENUMS.items():
        lines += ["", *_enum(cname, [(prefix + n, v) for n, v in _members(cls)])]
    for cls, (prefix, mask_name) in FLAGS.items():
        items = _members(cls)
        mask = 0
        for _, v in items:
            mask |= v
        lines += ["", *(f"#define {prefix}{n} 0x{v:04X}u" for n, v in items), f"#define {mask_name} 0x{mask:04X}u"]
    lines.append(END)
    return "\n".join(lines) + "\n"


def splice(text: str, block: str) -> str:
    """`text` with its generated block replaced by `block`."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"expected exactly one '{BEGIN}' and one '{END}' line")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    if tail.startswith("\n"):
        tail = tail[1:]
    return head + block + tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wvds.protocol.cheader", description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", metavar="HEADER", type=Path, help="exit 1 with a diff if HEADER's block is stale")
    mode.add_argument("--update", metavar="HEADER", type=Path, help="rewrite HEADER's block")
    args = ap.parse_args(argv)
    block = generate()
    path = args.check or args.update
    if path is None:
        sys.stdout.write(block)
        return 0
    current = path.read_text()
    try:
        wanted = splice(current, block)
    except ValueError as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 2
    if args.update:
        if wanted != current:
            path.write_text(wanted)
            print(f"{path}: generated block updated")
        return 0
    if wanted != current:
        sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), wanted.splitlines(True),
                                                   str(path), f"{path} (generated)"))
        print(f"{path}: generated block is stale; run python -m wvds.protocol.cheader --update {path}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
