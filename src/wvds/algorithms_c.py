"""Generate the OpenSSL provider's algorithm tables from the algorithm registry (wvds.algorithms).

    python -m wvds.algorithms_c                      # print the blocks
    python -m wvds.algorithms_c --check  <file>...   # exit 1 with a diff if a file's block is stale
    python -m wvds.algorithms_c --update <file>...   # rewrite the blocks in place

Each table sits between BEGIN/END marker lines in the C file that uses it, chosen by the file's name:
keymgmt.c (wvdsp_alg_info: key type, group, sizes, security) and keyref.c (the key reference names).
packaging/SConscript.provider runs --check before it compiles the provider.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from wvds.algorithms import signing_keys

BEGIN = "/* BEGIN GENERATED: python -m wvds.algorithms_c */"
END = "/* END GENERATED */"


def _c_str(text: str) -> str:
    return f'"{text}"' if text else "NULL"


def keymgmt_rows() -> list[str]:
    rows = ["    /* algorithm, keytype, group, public, max signature, bits, security bits, category */"]
    for i in signing_keys():
        rows.append(f"    {{WVDS_ALG_{i.algorithm.name}, {_c_str(i.keytype)}, {_c_str(i.provider_group)}, "
                    f"{i.public_size}, {i.signature_size}, {i.bits}, {i.security_bits}, {i.security_category}}},")
    return rows


def keyref_rows() -> list[str]:
    return [f"    {{WVDS_ALG_{i.algorithm.name}, {_c_str(i.keyref_name)}}}," for i in signing_keys()]


BLOCKS = {"keymgmt.c": keymgmt_rows, "keyref.c": keyref_rows}


def block(file_name: str) -> str:
    return "\n".join([BEGIN, *BLOCKS[file_name](), END]) + "\n"


def splice(text: str, new_block: str) -> str:
    """`text` with its generated block (marker lines included) replaced by `new_block`."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"expected exactly one '{BEGIN}' and one '{END}' line")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + new_block + tail.removeprefix("\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wvds.algorithms_c", description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff if a file's block is stale")
    mode.add_argument("--update", action="store_true", help="rewrite the files' blocks")
    ap.add_argument("files", nargs="*", type=Path, help=f"C files: {', '.join(BLOCKS)}")
    args = ap.parse_args(argv)
    if not args.files:
        for name in BLOCKS:
            sys.stdout.write(f"/* {name} */\n{block(name)}")
        return 0
    stale = 0
    for path in args.files:
        if path.name not in BLOCKS:
            print(f"{path}: no generated table for this file (known: {', '.join(BLOCKS)})", file=sys.stderr)
            return 2
        current = path.read_text()
        try:
            wanted = splice(current, block(path.name))
        except ValueError as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        if wanted == current:
            continue
        if args.update:
            path.write_text(wanted)
            print(f"{path}: generated block updated")
            continue
        sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), wanted.splitlines(True),
                                                   str(path), f"{path} (generated)"))
        print(f"{path}: generated block is stale; run python -m wvds.algorithms_c --update {path}", file=sys.stderr)
        stale = 1
    return stale


if __name__ == "__main__":
    sys.exit(main())
